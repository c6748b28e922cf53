from .mask_prediction import MaskPredictionHead
from .projection import DenseProjectionNeck, MLPProjectionNeck

__all__ = ['MLPProjectionNeck', 'DenseProjectionNeck', 'MaskPredictionHead']
