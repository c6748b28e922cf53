"""Token-space mask generators for ViTs: which patch tokens are hidden.

Every generator here returns ``dict(mask=np.ndarray[bool] (h, w), ...)``
over the model's token grid (``True`` = masked, i.e. not shown to the
encoder) and records its choices. Counts are exact and follow one rounding
rule each, stated in the class docstring and checked by
tests/test_models/test_mask_generators_token.py.

* :class:`RandomPatchMask` - MAE: ``int(L * ratio)`` tokens, uniformly.
* :class:`BlockRandomMask` - CMAE: the grid cut into k x k token blocks,
  ``int(B * (1 - ratio))`` blocks visible (MAE's keep rule on blocks).
* :class:`BlockwiseMask` - BEiT: rectangles of random area and aspect
  until exactly ``num_masking_patches`` tokens are masked.
* :class:`SimMIMMask` - SimMIM: ``ceil(M * ratio)`` cells of a coarse grid
  (mask patch larger than the model patch), each cell a square of tokens.
"""
import math
from numbers import Integral
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from mmmask.registry import MASK_GENERATORS
from .base import BaseMaskGenerator, check_ratio

__all__ = ['RandomPatchMask', 'BlockRandomMask', 'BlockwiseMask',
           'SimMIMMask', 'floor_count']

SizeLike = Union[int, Sequence[int]]

# Shares such as 196 * 0.35 are not exact in binary (68.59999...); a count
# is floor(n * share + _EPS) so that a decimal ratio gives the count its
# decimal arithmetic gives.
_EPS = 1e-6


def floor_count(n: int, share: float) -> int:
    """``floor(n * share)`` robust to binary rounding (``share`` in [0, 1])."""
    return int(math.floor(n * share + _EPS))


def _grid(size: SizeLike, name: str = 'input_size') -> Tuple[int, int]:
    if isinstance(size, Integral):
        size = (int(size), int(size))
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, Integral) and s > 0 for s in size)):
        raise ValueError(f'{name} must be a positive int or an (h, w) pair '
                         f'of positive ints, got {size!r}')
    return int(size[0]), int(size[1])


def _mask_from_indices(shape: Tuple[int, int],
                       indices: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape[0] * shape[1], dtype=np.bool_)
    mask[indices] = True
    return mask.reshape(shape)


@MASK_GENERATORS.register_module()
class RandomPatchMask(BaseMaskGenerator):
    """MAE's random patch masking (He et al. 2022, Sec. 3).

    Exactly ``int(L * mask_ratio)`` of the ``L = h * w`` tokens are masked,
    drawn uniformly without replacement.

    Args:
        input_size (int | tuple): token grid (h, w) (14 for 224 px / 16).
        mask_ratio (float): share of masked tokens, in [0, 1) (MAE: 0.75).
    Returns:
        ``mask`` (h, w) bool, ``num_masked`` int.
    """

    def __init__(self, input_size: SizeLike = 14,
                 mask_ratio: float = 0.75) -> None:
        self.input_size = _grid(input_size)
        self.mask_ratio = check_ratio(mask_ratio)

    @property
    def num_masked(self) -> int:
        h, w = self.input_size
        return floor_count(h * w, self.mask_ratio)

    def generate(self, rng: np.random.Generator, **context) -> dict:
        h, w = self.input_size
        idx = rng.permutation(h * w)[:self.num_masked]
        return dict(mask=_mask_from_indices((h, w), idx),
                    num_masked=self.num_masked)


@MASK_GENERATORS.register_module()
class BlockRandomMask(BaseMaskGenerator):
    """Random masking of k x k token blocks (CMAE authors' code).

    The (h, w) grid is cut into ``(h / k) x (w / k)`` blocks (h and w must be
    multiples of k); ``int(B * (1 - mask_ratio))`` of the ``B`` blocks stay
    visible (MAE's ``len_keep`` rule applied to blocks), the others are
    masked, uniformly at random. CMAE: 14 x 14 tokens, k = 2, ratio 0.65 ->
    7 x 7 = 49 blocks, ``int(49 * 0.35) = 17`` visible blocks = 68 visible
    tokens, 128 masked (a realised ratio of 0.653).

    Args:
        input_size (int | tuple): token grid (h, w) (14).
        block_size (int): k (2).
        mask_ratio (float): share of masked blocks, in [0, 1) (0.65).
    Returns:
        ``mask`` (h, w) bool, ``block_mask`` (h / k, w / k) bool,
        ``num_visible_blocks`` int.
    """

    def __init__(self, input_size: SizeLike = 14, block_size: int = 2,
                 mask_ratio: float = 0.65) -> None:
        self.input_size = _grid(input_size)
        if not isinstance(block_size, Integral) or block_size < 1:
            raise ValueError(f'block_size must be a positive int, '
                             f'got {block_size!r}')
        h, w = self.input_size
        if h % block_size or w % block_size:
            raise ValueError(f'the token grid {self.input_size} must be a '
                             f'multiple of block_size={block_size}')
        self.block_size = int(block_size)
        self.mask_ratio = check_ratio(mask_ratio)

    @property
    def block_grid(self) -> Tuple[int, int]:
        h, w = self.input_size
        return h // self.block_size, w // self.block_size

    @property
    def num_visible_blocks(self) -> int:
        bh, bw = self.block_grid
        return floor_count(bh * bw, 1.0 - self.mask_ratio)

    def generate(self, rng: np.random.Generator, **context) -> dict:
        bh, bw = self.block_grid
        order = rng.permutation(bh * bw)
        block_mask = _mask_from_indices(
            (bh, bw), order[self.num_visible_blocks:])  # (bh, bw)
        k = self.block_size
        mask = np.repeat(np.repeat(block_mask, k, axis=0), k, axis=1)
        return dict(mask=mask, block_mask=block_mask,
                    num_visible_blocks=self.num_visible_blocks)


@MASK_GENERATORS.register_module()
class BlockwiseMask(BaseMaskGenerator):
    """BEiT's block-wise masking (Bao et al. 2022, Algorithm 1).

    Repeat until ``num_masking_patches`` tokens are masked: draw a block
    area ``s ~ U[min_num_patches, min(max_num_patches, left)]`` tokens
    (``left`` = tokens still to mask) and an aspect ratio ``r`` log-uniform
    in ``[min_aspect, max_aspect]``; the block is ``round(sqrt(s r))`` x
    ``round(sqrt(s / r))`` tokens at a uniform position; it is taken when it
    masks between 1 and ``left`` new tokens (10 tries per block, as in
    BEiT). BEiT stops short when no block fits; here the remaining tokens
    (fewer than a minimal block) are masked one by one among the unmasked
    tokens next to the mask (any unmasked token if none is), so the count
    is always exact; ``num_topped_up`` records how many.

    Args:
        input_size (int | tuple): token grid (14 for BEiT at 224 px).
        num_masking_patches (int, optional): masked tokens (BEiT: 75 of 196);
            exclusive with ``mask_ratio``.
        mask_ratio (float, optional): ``num_masking_patches =
            int(L * mask_ratio)`` when the count is not given.
        min_num_patches (int): smallest block area (4).
        max_num_patches (int, optional): largest block area (None: no limit
            other than the count left).
        min_aspect (float): smallest aspect ratio (0.3); the largest is
            ``max_aspect`` (default ``1 / min_aspect``).
    Returns:
        ``mask`` (h, w) bool, ``num_blocks`` int, ``num_topped_up`` int.
    """

    def __init__(self, input_size: SizeLike = 14,
                 num_masking_patches: Optional[int] = 75,
                 mask_ratio: Optional[float] = None,
                 min_num_patches: int = 4,
                 max_num_patches: Optional[int] = None,
                 min_aspect: float = 0.3,
                 max_aspect: Optional[float] = None) -> None:
        self.input_size = _grid(input_size)
        h, w = self.input_size
        if mask_ratio is not None:
            num_masking_patches = floor_count(h * w, check_ratio(mask_ratio))
        if (not isinstance(num_masking_patches, Integral)
                or not 0 <= num_masking_patches < h * w):
            raise ValueError(f'num_masking_patches must be an int in '
                             f'[0, {h * w}) for a {h} x {w} grid, got '
                             f'{num_masking_patches!r}')
        if min_num_patches < 1:
            raise ValueError(f'min_num_patches must be >= 1, '
                             f'got {min_num_patches}')
        if max_num_patches is None:  # no limit but the count left
            max_num_patches = max(num_masking_patches, min_num_patches)
        if max_num_patches < min_num_patches:
            raise ValueError(f'max_num_patches ({max_num_patches}) must be '
                             f'>= min_num_patches ({min_num_patches})')
        max_aspect = max_aspect or 1.0 / min_aspect
        if not 0 < min_aspect <= max_aspect:
            raise ValueError(f'need 0 < min_aspect <= max_aspect, got '
                             f'{min_aspect}, {max_aspect}')
        self.num_masking_patches = int(num_masking_patches)
        self.min_num_patches = int(min_num_patches)
        self.max_num_patches = int(max_num_patches)
        self.log_aspect = (math.log(min_aspect), math.log(max_aspect))

    def _try_block(self, rng: np.random.Generator, mask: np.ndarray,
                   left: int) -> int:
        h, w = self.input_size
        for _ in range(10):
            high = max(self.min_num_patches, min(self.max_num_patches, left))
            area = rng.uniform(self.min_num_patches, high)
            aspect = math.exp(rng.uniform(*self.log_aspect))
            bh = int(round(math.sqrt(area * aspect)))
            bw = int(round(math.sqrt(area / aspect)))
            if not (1 <= bh <= h and 1 <= bw <= w):
                continue
            top = int(rng.integers(0, h - bh + 1))
            left_col = int(rng.integers(0, w - bw + 1))
            window = mask[top:top + bh, left_col:left_col + bw]
            new = int((~window).sum())
            if 0 < new <= left:
                window[...] = True
                return new
        return 0

    def _top_up(self, rng: np.random.Generator, mask: np.ndarray,
                left: int) -> None:
        for _ in range(left):
            near = np.zeros_like(mask)
            near[1:] |= mask[:-1]
            near[:-1] |= mask[1:]
            near[:, 1:] |= mask[:, :-1]
            near[:, :-1] |= mask[:, 1:]
            cand = np.flatnonzero(near & ~mask)
            if cand.size == 0:
                cand = np.flatnonzero(~mask)
            mask.flat[rng.choice(cand)] = True

    def generate(self, rng: np.random.Generator, **context) -> dict:
        mask = np.zeros(self.input_size, dtype=np.bool_)
        count, blocks = 0, 0
        while count < self.num_masking_patches:
            new = self._try_block(rng, mask,
                                  self.num_masking_patches - count)
            if new == 0:
                break
            count += new
            blocks += 1
        topped = self.num_masking_patches - count
        self._top_up(rng, mask, topped)
        return dict(mask=mask, num_blocks=blocks, num_topped_up=topped)


@MASK_GENERATORS.register_module()
class SimMIMMask(BaseMaskGenerator):
    """SimMIM's random masking with a mask patch larger than the model patch
    (Xie et al. 2022).

    The image (``input_size`` px) is cut into ``M = (input_size /
    mask_patch_size)^2`` cells; ``ceil(M * mask_ratio)`` of them are masked
    uniformly (SimMIM's rounding); each cell covers ``s x s`` model tokens,
    ``s = mask_patch_size / model_patch_size``.

    Args:
        input_size (int): image side in pixels (192).
        mask_patch_size (int): cell side in pixels (32).
        model_patch_size (int): token side in pixels (4 for Swin, 16 ViT).
        mask_ratio (float): share of masked cells, in [0, 1) (0.6).
    Returns:
        ``mask`` (input_size / model_patch_size,) * 2 bool, ``cell_mask``
        (input_size / mask_patch_size,) * 2 bool.
    """

    def __init__(self, input_size: int = 192, mask_patch_size: int = 32,
                 model_patch_size: int = 4, mask_ratio: float = 0.6) -> None:
        if input_size % mask_patch_size:
            raise ValueError(f'input_size ({input_size}) must be a multiple '
                             f'of mask_patch_size ({mask_patch_size})')
        if mask_patch_size % model_patch_size:
            raise ValueError(f'mask_patch_size ({mask_patch_size}) must be a '
                             f'multiple of model_patch_size '
                             f'({model_patch_size})')
        self.input_size = int(input_size)
        self.mask_patch_size = int(mask_patch_size)
        self.model_patch_size = int(model_patch_size)
        self.mask_ratio = check_ratio(mask_ratio)

    @property
    def num_masked_cells(self) -> int:
        cells = (self.input_size // self.mask_patch_size)**2
        return int(math.ceil(cells * self.mask_ratio - _EPS))

    def generate(self, rng: np.random.Generator, **context) -> dict:
        side = self.input_size // self.mask_patch_size
        scale = self.mask_patch_size // self.model_patch_size
        idx = rng.permutation(side * side)[:self.num_masked_cells]
        cell_mask = _mask_from_indices((side, side), idx)
        mask = np.repeat(np.repeat(cell_mask, scale, axis=0), scale, axis=1)
        return dict(mask=mask, cell_mask=cell_mask)
