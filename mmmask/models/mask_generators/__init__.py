"""Mask generators, registered in ``mmmask.registry.MASK_GENERATORS``.

One registry for every way of masking, used by ConvNet and ViT methods
alike; see :mod:`.base` for the call signature shared by all of them.
Fills (what a masked pixel becomes) are registered there too.
"""
from .base import (BaseMaskGenerator, as_generator, check_ratio,
                   check_ratio_range)
from .fills import (BaseMaskFill, BlurFill, HighPassNoiseFill, MeanFill,
                    NoiseFill, build_fill, gaussian_blur)
from .region import RegionMaskGenerator, box_to_mask
from .saliency import (ForegroundMaskGenerator, SaliencyGridMaskGenerator,
                       cells_to_pixels, saliency_foreground)
from .token import (BlockRandomMask, BlockwiseMask, RandomPatchMask,
                    SimMIMMask)

__all__ = [
    'BaseMaskGenerator', 'as_generator', 'check_ratio', 'check_ratio_range',
    'BaseMaskFill', 'MeanFill', 'NoiseFill', 'BlurFill', 'HighPassNoiseFill',
    'build_fill', 'gaussian_blur', 'RegionMaskGenerator', 'box_to_mask',
    'SaliencyGridMaskGenerator', 'ForegroundMaskGenerator',
    'cells_to_pixels', 'saliency_foreground', 'RandomPatchMask',
    'BlockRandomMask', 'BlockwiseMask', 'SimMIMMask'
]
