"""What every mask generator shares: the call signature, the RNG, checks.

A mask generator is one small class registered in
``mmmask.registry.MASK_GENERATORS`` and built from a config dict. Calling it
returns a dict with

* ``'mask'``: a boolean ``np.ndarray``, ``True`` where the input is masked;
  token space ``(h, w)`` for ViTs, pixel or cell space for ConvNets (each
  generator's docstring gives the shape);
* what it chose (ratios, cells, boxes, the mask kind, ...), so that a test,
  a visualisation or the algorithm can read the choice back.

Randomness: every generator draws from an ``np.random.Generator``. Pass
``rng=`` (a Generator, an int seed or a ``RandomState``); without one it is
seeded from numpy's global state, which the data pipeline seeds per worker
(mmengine's ``worker_init_fn``), so masks are reproducible under the runner's
``randomness=dict(seed=...)``.
"""
from abc import ABCMeta, abstractmethod
from numbers import Integral
from typing import Optional, Sequence, Tuple, Union

import numpy as np
import torch

from mmmask.errors import RangeError

RNGLike = Union[None, int, np.random.Generator, np.random.RandomState]


def as_generator(rng: RNGLike = None) -> np.random.Generator:
    """An ``np.random.Generator`` from a seed, a Generator, a RandomState or
    ``None`` (one draw from numpy's global state, which the pipeline seeds)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng(np.random.randint(0, 2**31 - 1))
    if isinstance(rng, np.random.RandomState):
        return np.random.default_rng(rng.randint(0, 2**31 - 1))
    if isinstance(rng, Integral):
        return np.random.default_rng(int(rng))
    raise TypeError(f'rng must be None, an int seed, an np.random.Generator '
                    f'or an np.random.RandomState, got {type(rng).__name__}')


def check_ratio(value: float, name: str = 'mask_ratio', low: float = 0.0,
                high: float = 1.0, high_inclusive: bool = False) -> float:
    """``value`` as a float, or a :class:`RangeError` (a ValueError) naming
    ``name`` and the range (default ``[0, 1)``: a mask ratio of 1 leaves
    nothing visible)."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise TypeError(f'{name} must be a number, got {value!r}') from None
    ok = low <= value and (value <= high if high_inclusive else value < high)
    if not ok:
        close = ']' if high_inclusive else ')'
        raise RangeError(f'{name} must be in [{low:g}, {high:g}{close}, '
                         f'got {value:g}')
    return value


def check_ratio_range(value: Sequence[float], name: str,
                      low: float = 0.0, high: float = 1.0,
                      high_inclusive: bool = False) -> Tuple[float, float]:
    """A ``(min, max)`` pair of ratios, each checked by :func:`check_ratio`,
    with ``min <= max``."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f'{name} must be a (min, max) pair, got {value!r}')
    lo = check_ratio(value[0], f'{name}[0]', low, high, high_inclusive)
    hi = check_ratio(value[1], f'{name}[1]', low, high, high_inclusive)
    if lo > hi:
        raise RangeError(f'{name} must be (min, max) with min <= max, '
                         f'got {tuple(value)}')
    return lo, hi


class BaseMaskGenerator(metaclass=ABCMeta):
    """One way of masking.

    ``gen(rng=None, **context) -> dict(mask=np.ndarray[bool], ...)``;
    ``context`` carries what a generator needs from the sample (a saliency
    map, an overlap box, ...). :meth:`batch` stacks ``num`` masks into a
    ``torch.bool`` tensor for generators that run inside a model.
    """

    #: 'token' (a ViT's patch grid) or 'pixel' (a ConvNet's image or cells)
    space = 'token'

    def __call__(self, rng: RNGLike = None, **context) -> dict:
        out = self.generate(as_generator(rng), **context)
        if 'mask' not in out:
            raise KeyError(f'{type(self).__name__}.generate must return a '
                           "dict with a 'mask' entry")
        return out

    @abstractmethod
    def generate(self, rng: np.random.Generator, **context) -> dict:
        """Draw one mask (and record its choices) with ``rng``."""

    def batch(self, num: int, rng: RNGLike = None,
              device: Optional[torch.device] = None,
              **context) -> torch.Tensor:
        """``num`` independent masks stacked: ``(num, *mask.shape)`` bool."""
        rng = as_generator(rng)
        masks = [self(rng, **context)['mask'] for _ in range(num)]
        return torch.from_numpy(np.stack(masks)).to(device=device,
                                                    dtype=torch.bool)

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items()
                         if not k.startswith('_'))
        return f'{type(self).__name__}({args})'
