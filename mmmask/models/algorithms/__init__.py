from .base import BaseMomentumContrast, BaseSelfSupAlgorithm
from .cmae import CMAE
from .densecl import DenseCL, dense_correspondence
from .macrl import MACRL
from .maskco import MaskCo, region_features
from .mocov2 import MoCoV2
from .saliency_mocov2 import SaliencyMoCoV2

__all__ = ['BaseSelfSupAlgorithm', 'BaseMomentumContrast', 'MoCoV2',
           'DenseCL', 'dense_correspondence', 'MaskCo', 'region_features',
           'SaliencyMoCoV2', 'CMAE', 'MACRL']
