from .info_nce import info_nce

__all__ = ['info_nce']
from .cross_rank_info_nce import cross_rank_info_nce  # noqa: F401
from .reconstruction import (masked_patch_loss, patch_pixel_targets,  # noqa
                             patchify, unpatchify)
