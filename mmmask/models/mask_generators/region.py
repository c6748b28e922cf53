"""Region (box) masking: MaskCo's masked region (docs/methods.md section 4)."""
from typing import Optional, Sequence, Tuple

import numpy as np

from mmmask.registry import MASK_GENERATORS
from .base import BaseMaskGenerator, check_ratio_range


def box_to_mask(box: Sequence[float], shape: Tuple[int, int]) -> np.ndarray:
    """(H, W) bool: the pixels whose centres lie inside ``box``
    (x0, y0, x1, y1, continuous pixel coordinates)."""
    h, w = shape
    x0, y0, x1, y1 = box
    cols = np.arange(w) + 0.5
    rows = np.arange(h) + 0.5
    in_x = (cols >= x0) & (cols < x1)
    in_y = (rows >= y0) & (rows < y1)
    return in_y[:, None] & in_x[None, :]


@MASK_GENERATORS.register_module()
class RegionMaskGenerator(BaseMaskGenerator):
    """A random box inside given bounds, and its pixel mask.

    ``gen(rng, bounds=(x0, y0, x1, y1), image_size=(H, W))`` draws the box's
    width and height as fractions ``U[side_range]`` of the bounds' width and
    height (independently), places it uniformly inside the bounds, and
    returns ``mask`` (H, W) bool (pixel centres inside the box) and ``box``
    (4,) float. MaskCo (open design): the bounds are the two views' overlap
    in the query view, sides 0.3-0.6 of it.

    Args:
        side_range (tuple): (min, max) box side / bounds side, in (0, 1].
    """

    space = 'pixel'

    def __init__(self, side_range: Tuple[float, float] = (0.3, 0.6)) -> None:
        self.side_range = check_ratio_range(
            side_range, 'side_range', low=0.0, high=1.0, high_inclusive=True)
        if self.side_range[0] <= 0:
            raise ValueError(f'side_range must be > 0, got {side_range}')

    def generate(self, rng: np.random.Generator,
                 bounds: Optional[Sequence[float]] = None,
                 image_size: Optional[Tuple[int, int]] = None) -> dict:
        shape = image_size
        if shape is None:
            raise ValueError('RegionMaskGenerator needs image_size=(H, W)')
        if bounds is None:
            bounds = (0., 0., float(shape[1]), float(shape[0]))
        bx0, by0, bx1, by1 = (float(v) for v in bounds)
        bw, bh = bx1 - bx0, by1 - by0
        if bw <= 0 or bh <= 0:
            raise ValueError(f'RegionMaskGenerator: empty bounds {bounds}')
        w = bw * rng.uniform(*self.side_range)
        h = bh * rng.uniform(*self.side_range)
        x0 = bx0 + rng.uniform(0.0, bw - w)
        y0 = by0 + rng.uniform(0.0, bh - h)
        box = np.array([x0, y0, x0 + w, y0 + h])
        return dict(mask=box_to_mask(box, shape), box=box)
