from .channel_order import AsBGR
from .decode_crop import DecodeMultiViewCrops, jpeg_header
from .geometry import (GeometricMultiView, RandomFlip, RandomResizedCrop,
                       ViewGeometry, map_boxes, map_boxes_from_original,
                       map_boxes_to_original, map_points, overlap_box,
                       overlap_fraction)
from .loading import (CorruptImageError, LoadImageFromFile, SkipBadImages,
                      check_image_bytes, decode_image_bytes, read_image_bytes)
from .masking import GenerateMask
from .pixel_shift import PixelShiftViews
from .regions import SampleOverlapRegion, box_iou

__all__ = ['LoadImageFromFile', 'CorruptImageError', 'check_image_bytes',
           'GenerateMask', 'GeometricMultiView', 'RandomFlip',
           'RandomResizedCrop', 'ViewGeometry', 'map_boxes',
           'map_boxes_from_original', 'map_boxes_to_original', 'map_points',
           'overlap_box', 'SampleOverlapRegion', 'box_iou', 'PixelShiftViews',
           'overlap_fraction', 'DecodeMultiViewCrops', 'jpeg_header',
           'SkipBadImages', 'decode_image_bytes', 'read_image_bytes',
           'AsBGR']
