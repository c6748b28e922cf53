from .cross_rank_info_nce import cross_rank_info_nce
from .info_nce import info_nce
from .reconstruction import (masked_patch_loss, patch_pixel_targets,
                             patch_stats, patchify, unpatchify)

__all__ = ['info_nce', 'cross_rank_info_nce', 'masked_patch_loss',
           'patch_pixel_targets', 'patch_stats', 'patchify', 'unpatchify']
