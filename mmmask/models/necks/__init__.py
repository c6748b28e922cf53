from .projection import DenseProjectionNeck, MLPProjectionNeck

__all__ = ['MLPProjectionNeck', 'DenseProjectionNeck']
