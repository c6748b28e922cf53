"""Data preprocessors: the device half of the split view pipeline."""
from .batch_augments import (BatchColorJitter, BatchGaussianBlur,
                             BatchRandomFlip, BatchRandomGrayscale,
                             BatchSolarize, BatchViewAugment)
from .view_augment_preprocessor import (ViewAugmentDataPreprocessor,
                                        flip_geometry)

__all__ = [
    'BatchViewAugment', 'BatchColorJitter', 'BatchRandomGrayscale',
    'BatchGaussianBlur', 'BatchSolarize', 'BatchRandomFlip',
    'ViewAugmentDataPreprocessor', 'flip_geometry'
]
