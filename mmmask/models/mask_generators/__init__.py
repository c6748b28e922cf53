"""Mask generators, registered in ``mmmask.registry.MASK_GENERATORS``.

One registry for every way of masking, used by ConvNet and ViT methods
alike; see :mod:`.base` for the call signature shared by all of them.
"""
from .base import (BaseMaskGenerator, as_generator, check_ratio,
                   check_ratio_range)

__all__ = ['BaseMaskGenerator', 'as_generator', 'check_ratio',
           'check_ratio_range']
from .token import *  # noqa: F401,F403
