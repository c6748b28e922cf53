import warnings

# Register mmpretrain's datasets and transforms (a child registry does not
# trigger its parent's lazy imports).
import mmpretrain.datasets  # noqa: F401

from .transforms import *  # noqa: F401,F403

# mmpretrain's ColorJitter uses mmcv's pillow backend (as torchvision's MoCo
# v2 augmentation does), and mmcv warns on every saturation change that only
# `alpha` is used there, which is exactly what ColorJitter passes.
warnings.filterwarnings('ignore', message="Only use 'alpha' for pillow backend")
