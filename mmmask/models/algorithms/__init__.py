from .base import BaseMomentumContrast, BaseSelfSupAlgorithm
from .densecl import DenseCL, dense_correspondence
from .mocov2 import MoCoV2

__all__ = ['BaseSelfSupAlgorithm', 'BaseMomentumContrast', 'MoCoV2',
           'DenseCL', 'dense_correspondence']
from .cmae import CMAE  # noqa: F401
from .macrl import MACRL  # noqa: F401
