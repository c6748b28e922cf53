from .loading import CorruptImageError, LoadImageFromFile, check_image_bytes

__all__ = ['LoadImageFromFile', 'CorruptImageError', 'check_image_bytes']
