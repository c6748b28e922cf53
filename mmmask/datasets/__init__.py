# Register mmpretrain's datasets and transforms (a child registry does not
# trigger its parent's lazy imports).
import mmpretrain.datasets  # noqa: F401

from .transforms import *  # noqa: F401,F403
