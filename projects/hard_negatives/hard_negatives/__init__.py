"""Hard-negative-weighted InfoNCE: an mmmask plugin (see ../README.md)."""
from .hard_negative_head import HardNegativeInfoNCEHead, hard_negative_info_nce

__all__ = ['HardNegativeInfoNCEHead', 'hard_negative_info_nce']
