from .channel_order import AsBGR
from .geometry import (GeometricMultiView, RandomFlip, RandomResizedCrop,
                       ViewGeometry, map_boxes, map_boxes_from_original,
                       map_boxes_to_original, map_points, overlap_box)
from .loading import CorruptImageError, LoadImageFromFile, check_image_bytes
from .masking import GenerateMask
from .pixel_shift import PixelShiftViews
from .regions import SampleOverlapRegion, box_iou

__all__ = ['LoadImageFromFile', 'CorruptImageError', 'check_image_bytes',
           'GenerateMask', 'GeometricMultiView', 'RandomFlip',
           'RandomResizedCrop', 'ViewGeometry', 'map_boxes',
           'map_boxes_from_original', 'map_boxes_to_original', 'map_points',
           'overlap_box', 'SampleOverlapRegion', 'box_iou', 'PixelShiftViews',
           'AsBGR']
