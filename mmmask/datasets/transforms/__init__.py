from .loading import CorruptImageError, LoadImageFromFile, check_image_bytes
from .masking import GenerateMask

__all__ = ['LoadImageFromFile', 'CorruptImageError', 'check_image_bytes',
           'GenerateMask']
from .pixel_shift import PixelShiftViews  # noqa: F401
