from .loading import CorruptImageError, LoadImageFromFile, check_image_bytes
from .geometry import (GeometricMultiView, RandomFlip, RandomResizedCrop,
                       ViewGeometry, map_boxes, map_boxes_from_original,
                       map_boxes_to_original, map_points, overlap_box)
from .masking import GenerateMask
from .regions import SampleOverlapRegion, box_iou

__all__ = ['LoadImageFromFile', 'CorruptImageError', 'check_image_bytes',
<<<<<<< HEAD
           'GenerateMask', 'GeometricMultiView', 'RandomFlip',
           'RandomResizedCrop', 'ViewGeometry', 'map_boxes',
           'map_boxes_from_original', 'map_boxes_to_original', 'map_points',
           'overlap_box', 'SampleOverlapRegion', 'box_iou']
=======
           'GenerateMask']
from .pixel_shift import PixelShiftViews  # noqa: F401
>>>>>>> issue6
