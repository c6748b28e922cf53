from .base import BaseMomentumContrast, BaseSelfSupAlgorithm
from .densecl import DenseCL, dense_correspondence
from .maskco import MaskCo, region_features
from .mocov2 import MoCoV2
from .saliency_mocov2 import SaliencyMoCoV2

__all__ = ['BaseSelfSupAlgorithm', 'BaseMomentumContrast', 'MoCoV2',
<<<<<<< HEAD
           'DenseCL', 'dense_correspondence', 'MaskCo', 'region_features',
           'SaliencyMoCoV2']
=======
           'DenseCL', 'dense_correspondence']
from .cmae import CMAE  # noqa: F401
from .macrl import MACRL  # noqa: F401
>>>>>>> issue6
