from .projection import DenseProjectionNeck, MLPProjectionNeck

__all__ = ['MLPProjectionNeck', 'DenseProjectionNeck']
from .mae_decoders import MaskedTokenDecoder, restore_ids  # noqa: F401
from .mlp_bn import MLPBNNeck  # noqa: F401
