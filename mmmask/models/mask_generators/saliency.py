"""Saliency-guided grid masking for ConvNets (docs/methods.md section 3,
arXiv 2309.12757).

The image is a ``grid_size`` x ``grid_size`` grid of cells (7 x 7 cells of
32 x 32 px on a 224 view). A saliency map on the same grid splits the cells
into foreground (value >= mean - ``fg_std_factor`` * std) and background.
Foreground cells keep their **true** positions: the authors' code
right-aligns the foreground cells of each row (a bug); mmmask does not.

Two generators share these parts:

* :class:`SaliencyGridMaskGenerator` masks the query view: a focal mask
  (keep a random square, fill the rest), or spatial / channel-wise grid
  masking spread over foreground and background in proportion;
* :class:`ForegroundMaskGenerator` makes the hard negative: the same kinds
  (focal square, channel-wise or spatial cells) on foreground cells only.

Both return ``mask`` (3, H, W) bool (True = fill) and their choices.
"""
from abc import abstractmethod
from functools import lru_cache
from typing import Optional, Tuple

import numpy as np

from mmmask.registry import MASK_GENERATORS
from .base import BaseMaskGenerator, check_ratio, check_ratio_range

MASK_KINDS = ('focal', 'spatial', 'channel')


def saliency_foreground(saliency: Optional[np.ndarray], grid_size: int,
                        std_factor: float = 0.6) -> np.ndarray:
    """(g, g) bool: cells whose saliency >= mean - std_factor * std.

    ``saliency`` is a (g, g) map (e.g. the channel sum of a C5 feature map);
    ``None`` counts every cell as foreground.
    """
    if saliency is None:
        return np.ones((grid_size, grid_size), dtype=bool)
    sal = np.asarray(saliency, dtype=np.float64)
    if sal.shape != (grid_size, grid_size):
        raise ValueError(f'saliency map of shape {sal.shape} does not match '
                         f'the {grid_size} x {grid_size} grid')
    return sal >= sal.mean() - std_factor * sal.std()


def cell_edges(size: int, grid_size: int) -> np.ndarray:
    """(g + 1,) pixel edges of the cells along one side (32 px at 224/7)."""
    return np.round(np.linspace(0, size, grid_size + 1)).astype(int)


@lru_cache(maxsize=64)
def _cell_of_pixel(size: int, grid_size: int) -> np.ndarray:
    """(size,) the cell index of each pixel along one side (computed once
    per size: masks are drawn per image on the training step's path)."""
    index = np.repeat(np.arange(grid_size),
                      np.diff(cell_edges(size, grid_size)))
    index.flags.writeable = False  # shared by every call
    return index


def cells_to_pixels(cells: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Cell masks (..., g, g) -> pixel masks (..., H, W) (nearest)."""
    g = cells.shape[-1]
    rows = _cell_of_pixel(int(shape[0]), g)
    cols = _cell_of_pixel(int(shape[1]), g)
    return cells[..., rows[:, None], cols[None, :]]


def pick_cells(rng: np.random.Generator, candidates: np.ndarray,
               num: int) -> np.ndarray:
    """(g, g) bool with ``num`` cells drawn without replacement among the
    True cells of ``candidates``."""
    out = np.zeros(candidates.shape, dtype=bool)
    idx = np.flatnonzero(candidates)
    num = min(int(num), idx.size)
    if num > 0:
        out.flat[rng.choice(idx, size=num, replace=False)] = True
    return out


def square_mask(rng: np.random.Generator, shape: Tuple[int, int],
                side: int, inside: bool) -> np.ndarray:
    """(H, W) bool square of ``side`` px placed uniformly in the image (as
    a random crop): True inside it (``inside``) or outside it."""
    h, w = shape
    side_h, side_w = min(side, h), min(side, w)
    top = int(rng.integers(0, h - side_h + 1))
    left = int(rng.integers(0, w - side_w + 1))
    sq = np.zeros(shape, dtype=bool)
    sq[top:top + side_h, left:left + side_w] = True
    return sq if inside else ~sq


class _SaliencyGridBase(BaseMaskGenerator):
    """What the query and hard-negative generators share: the foreground,
    the kind draw (focal with ``focal_prob``, else channel-wise with
    ``channel_prob`` or spatial), the foreground count with its cap, and
    the cells drawn without replacement."""

    space = 'pixel'

    def __init__(self, grid_size: int, ratio_range: Tuple[float, float],
                 fg_std_factor: float, max_fg_ratio: float,
                 focal_prob: float, focal_size: int, channel_prob: float,
                 base_size: int, num_channels: int) -> None:
        if grid_size < 1:
            raise ValueError(f'grid_size must be >= 1, got {grid_size}')
        self.grid_size = int(grid_size)
        self.ratio_range = check_ratio_range(ratio_range, 'ratio_range')
        self.fg_std_factor = float(fg_std_factor)
        self.max_fg_ratio = check_ratio(max_fg_ratio, 'max_fg_ratio',
                                        high_inclusive=True)
        self.focal_prob = check_ratio(focal_prob, 'focal_prob',
                                      high_inclusive=True)
        self.focal_size = int(focal_size)
        self.channel_prob = check_ratio(channel_prob, 'channel_prob',
                                        high_inclusive=True)
        self.base_size = int(base_size)
        self.num_channels = int(num_channels)

    def _focal_side(self, shape: Tuple[int, int]) -> int:
        """``focal_size`` is in pixels of a ``base_size`` view; scaled."""
        return max(1, int(round(self.focal_size * min(shape) /
                                self.base_size)))

    def _shape(self, image_size) -> Tuple[int, int]:
        if image_size is None:
            return (self.base_size, self.base_size)
        if isinstance(image_size, int):
            return (image_size, image_size)
        return tuple(int(s) for s in image_size)

    def num_fg(self, ratio: float, num_fg_cells: int) -> int:
        """Foreground cells to mask for ratio r: ``round(min(r * fg_ratio,
        max_fg_ratio) * g^2)`` with fg_ratio = foreground cells / g^2 (the
        authors' count; ``max_fg_ratio=1`` is no cap)."""
        total = self.grid_size ** 2
        share = min(ratio * num_fg_cells / total, self.max_fg_ratio)
        return min(int(round(share * total)), num_fg_cells)

    def generate(self, rng: np.random.Generator,
                 saliency: Optional[np.ndarray] = None,
                 image_size=None) -> dict:
        shape = self._shape(image_size)
        g, c = self.grid_size, self.num_channels
        fg = saliency_foreground(saliency, g, self.fg_std_factor)
        if rng.random() < self.focal_prob:
            square = self._focal_mask(rng, shape)  # (H, W), True = fill
            return dict(mask=np.broadcast_to(square, (c, ) + shape).copy(),
                        cells=np.zeros((c, g, g), dtype=bool), kind='focal',
                        ratio=0.0, num_fg=0, num_bg=0, foreground=fg)
        kind = 'channel' if rng.random() < self.channel_prob else 'spatial'
        ratio = float(rng.uniform(*self.ratio_range))
        n_fg, n_bg = self.cell_counts(ratio, int(fg.sum()))
        draws = c if kind == 'channel' else 1  # channel-wise: own cells each
        cells = np.stack([pick_cells(rng, fg, n_fg)
                          | pick_cells(rng, ~fg, n_bg) for _ in range(draws)])
        cells = np.broadcast_to(cells, (c, ) + fg.shape).copy()
        return dict(mask=cells_to_pixels(cells, shape), cells=cells,
                    foreground=fg, kind=kind, ratio=ratio, num_fg=n_fg,
                    num_bg=n_bg)

    @abstractmethod
    def _focal_mask(self, rng, shape) -> np.ndarray:
        """(H, W) bool: the focal mask (True = fill)."""

    @abstractmethod
    def cell_counts(self, ratio: float, num_fg_cells: int) -> Tuple[int, int]:
        """(n_fg, n_bg): the cells masked per channel for ratio r."""


@MASK_GENERATORS.register_module()
class SaliencyGridMaskGenerator(_SaliencyGridBase):
    """Query-view masking of the saliency method (the authors'
    ``Masking(mode="pos")``).

    ``gen(rng, saliency=(g, g) map or None, image_size=(H, W))``:

    * with probability ``focal_prob`` a **focal** mask: keep a random
      ``focal_size`` square, mask everything else;
    * otherwise ``r ~ U[ratio_range]``, ``n = int(g^2 r)`` cells, of which
      ``n_fg = round(min(r * fg_ratio, max_fg_ratio) * g^2)`` foreground and
      the rest background (fg_ratio = foreground cells / g^2), either
      **channel**-wise (probability ``channel_prob``: each channel draws its
      own cells) or **spatial** (one cell set for all channels).

    When one side has fewer cells than asked for, the other side makes up
    the difference, so exactly ``n`` cells are masked per channel.

    Returns ``mask`` (C, H, W) bool, ``cells`` (C, g, g) bool (all False for
    focal), ``kind``, ``ratio``, ``num_fg``, ``num_bg``, ``foreground``
    (g, g) bool.

    Args:
        grid_size (int): g (7).
        ratio_range (tuple): range of r (0.05, 0.25).
        fg_std_factor (float): foreground threshold factor (0.6).
        max_fg_ratio (float): cap of the foreground share (0.55; 1 = none,
            as in the authors' ``blur`` / ``mean`` strategies).
        focal_prob (float): probability of a focal mask (0.2; 0 in ``blur``
            / ``mean``).
        focal_size (int): kept square side on a ``base_size`` view (200).
        channel_prob (float): probability of channel-wise masking among the
            grid masks (0.7; spatial otherwise; 0 in ``blur`` / ``mean``).
        base_size (int): view size the pixel sizes refer to (224).
        num_channels (int): C (3).
    """

    def __init__(self, grid_size: int = 7,
                 ratio_range: Tuple[float, float] = (0.05, 0.25),
                 fg_std_factor: float = 0.6, max_fg_ratio: float = 0.55,
                 focal_prob: float = 0.2, focal_size: int = 200,
                 channel_prob: float = 0.7, base_size: int = 224,
                 num_channels: int = 3) -> None:
        super().__init__(grid_size, ratio_range, fg_std_factor, max_fg_ratio,
                         focal_prob, focal_size, channel_prob, base_size,
                         num_channels)

    def cell_counts(self, ratio: float, num_fg_cells: int) -> Tuple[int, int]:
        """(n_fg, n_bg) for ratio r: n = int(g^2 r), n_fg as
        :meth:`num_fg`, made feasible for the cells there are."""
        total = self.grid_size ** 2
        n = int(total * ratio)
        n_fg = min(self.num_fg(ratio, num_fg_cells), n)
        n_bg = min(n - n_fg, total - num_fg_cells)
        n_fg = min(n - n_bg, num_fg_cells)  # background short: more fg
        return n_fg, n_bg

    def _focal_mask(self, rng, shape):
        """Keep a random ``focal_size`` square, fill the rest."""
        return square_mask(rng, shape, self._focal_side(shape), inside=False)


@MASK_GENERATORS.register_module()
class ForegroundMaskGenerator(_SaliencyGridBase):
    """The saliency method's hard negative: mask the foreground only (the
    authors' ``Masking(mode="neg")``).

    ``gen(rng, saliency=(g, g) map or None, image_size=(H, W))``: the same
    kinds as the query (:class:`SaliencyGridMaskGenerator`): with
    probability ``focal_prob`` the focal variant (a ``focal_size`` square,
    130 px on a 224 view, placed uniformly in the view, is masked);
    otherwise channel-wise (``channel_prob``) or spatial grid masking of
    ``round(min(r * fg_ratio, max_fg_ratio) * g^2)`` foreground cells,
    ``r ~ U[ratio_range]`` (0.4-0.7), and no background cell.

    Returns ``mask`` (C, H, W), ``cells`` (C, g, g), ``kind``
    (``'focal'`` | ``'channel'`` | ``'spatial'``), ``ratio``, ``num_fg``,
    ``num_bg`` (0), ``foreground``.

    Args: as :class:`SaliencyGridMaskGenerator` (ratio_range (0.4, 0.7),
        focal_size 130).
    """

    def __init__(self, grid_size: int = 7,
                 ratio_range: Tuple[float, float] = (0.4, 0.7),
                 fg_std_factor: float = 0.6, max_fg_ratio: float = 0.55,
                 focal_prob: float = 0.2, focal_size: int = 130,
                 channel_prob: float = 0.7, base_size: int = 224,
                 num_channels: int = 3) -> None:
        super().__init__(grid_size, ratio_range, fg_std_factor, max_fg_ratio,
                         focal_prob, focal_size, channel_prob, base_size,
                         num_channels)

    def cell_counts(self, ratio: float, num_fg_cells: int) -> Tuple[int, int]:
        """(n_fg, 0): foreground cells only."""
        return self.num_fg(ratio, num_fg_cells), 0

    def _focal_mask(self, rng, shape):
        """Fill a ``focal_size`` square placed uniformly in the view."""
        return square_mask(rng, shape, self._focal_side(shape), inside=True)
