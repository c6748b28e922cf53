from .mae_decoders import MaskedTokenDecoder, restore_ids
from .mask_prediction import MaskPredictionHead
from .mlp_bn import MLPBNNeck
from .projection import DenseProjectionNeck, MLPProjectionNeck

__all__ = ['MLPProjectionNeck', 'DenseProjectionNeck', 'MaskPredictionHead',
           'MaskedTokenDecoder', 'restore_ids', 'MLPBNNeck']
