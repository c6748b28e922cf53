"""Registered batched view augmentations (``BATCH_AUGMENTS``).

Each op splits its randomness from its arithmetic:

* ``sample_params(n, generator)`` draws the parameters of ``n`` samples
  from a CPU ``torch.Generator`` and returns a dict of CPU tensors with
  leading dimension ``n`` (the preprocessor draws them from
  ``StepRandom('view_augment')``, so the CPU and a CUDA device draw the
  same numbers, and moves the floating-point ones to the device with
  ``op.params_to``: the selections, bool or integer, and the op's
  ``host_params`` stay on the CPU, where the ops read them without waiting
  for the device);
* ``apply(imgs, params)`` applies them to ``imgs`` (N, 3, H, W) float32
  RGB whole numbers in [0, 255] on any device, touching only the selected
  samples (a sub-batch by index, never a loop over samples) and returns the
  result; it may write into ``imgs`` (pass a copy to keep it).

The probabilities and ranges are those of the per-image transforms of
mmpretrain / mmcv with the same arguments (``RandomApply(ColorJitter)``,
``RandomGrayscale``, ``GaussianBlur(magnitude_std='inf')``, ``Solarize``,
``RandomFlip``).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from mmmask.registry import BATCH_AUGMENTS
from . import view_augment as F

__all__ = [
    'BatchViewAugment', 'BatchColorJitter', 'BatchRandomGrayscale',
    'BatchGaussianBlur', 'BatchSolarize', 'BatchRandomFlip'
]

Params = Dict[str, Tensor]


def _rows(select: Tensor) -> List[int]:
    """The indices where the (N,) bool ``select`` is True."""
    return torch.nonzero(select.cpu()).flatten().tolist()


def _check_prob(name: str, prob: float) -> float:
    if not 0.0 <= float(prob) <= 1.0:
        raise ValueError(f'{name}: prob must be in [0, 1], got {prob}')
    return float(prob)


def _bernoulli(n: int, prob: float, generator: torch.Generator) -> Tensor:
    """(n,) bool, True with probability ``prob``."""
    return torch.rand(n, generator=generator, dtype=torch.float64) < prob


def _uniform(n: int, low: float, high: float,
             generator: torch.Generator) -> Tensor:
    """(n,) float64 uniform in [low, high)."""
    u = torch.rand(n, generator=generator, dtype=torch.float64)
    return low + (high - low) * u


class BatchViewAugment:
    """Base of the batched ops: ``sample_params`` + ``apply``.

    ``flips`` is True for an op that mirrors images (its params carry a
    ``flip`` (N,) bool tensor), so the preprocessor updates the geometry
    records of those samples. ``compile`` (set by the preprocessor's
    ``compile=True``) makes an op that has a ``torch.compile`` d kernel use
    it (``BatchGaussianBlur``, the hue of ``BatchColorJitter``); the others
    ignore it.
    """
    flips = False
    compile = False
    host_params: Tuple[str, ...] = ()  # floats the op reads on the CPU

    def params_to(self, params: Params, device) -> Params:
        """The floating-point parameters moved to ``device``; the selections
        (bool / integer tensors) and ``host_params`` kept on the CPU."""
        return {k: t.to(device, non_blocking=True)
                if t.is_floating_point() and k not in self.host_params else t
                for k, t in params.items()}

    def sample_params(self, n: int, generator: torch.Generator) -> Params:
        raise NotImplementedError  # pragma: no cover (abstract)

    def apply(self, imgs: Tensor, params: Params) -> Tensor:
        raise NotImplementedError  # pragma: no cover (abstract)

    def __call__(self, imgs: Tensor, generator: torch.Generator) -> Tensor:
        params = self.sample_params(imgs.shape[0], generator)
        return self.apply(imgs, self.params_to(params, imgs.device))

    @staticmethod
    def _on(imgs: Tensor, rows: List[int], fn, *args: Tensor) -> Tensor:
        """``fn`` applied to the samples ``rows`` (increasing indices;
        ``args`` are (N,) parameters); the others unchanged. The selected
        samples are written back into ``imgs`` (no copy of the batch); a run
        of consecutive samples is taken as a view, without a gather."""
        n = len(rows)
        if n == 0:
            return imgs
        if n == imgs.shape[0]:
            return fn(imgs, *args)
        if rows[-1] - rows[0] + 1 == n:
            part = imgs.narrow(0, rows[0], n)
            part.copy_(fn(part, *(a.narrow(0, rows[0], n) for a in args)))
            return imgs
        idx = torch.tensor(rows, device=imgs.device)
        return imgs.index_copy_(0, idx, fn(imgs.index_select(0, idx),
                                           *(a[rows] for a in args)))


def _range(name: str, value, center: float,
           bound: Tuple[float, float]) -> Optional[Tuple[float, float]]:
    """mmpretrain ``ColorJitter._check_input``: ``v`` -> (max(lo, center -
    v), center + v); a pair is taken as it is; 0 / None -> off."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f'BatchColorJitter: {name} must be >= 0, got '
                             f'{value}')
        if value == 0:
            return None
        lo, hi = center - value, center + value
        lo = max(lo, bound[0])
    else:
        lo, hi = (float(v) for v in value)
    if not bound[0] <= lo <= hi <= bound[1]:
        raise ValueError(f'BatchColorJitter: {name} range must lie in '
                         f'{bound}, got ({lo}, {hi})')
    return float(lo), float(hi)


@BATCH_AUGMENTS.register_module()
class BatchColorJitter(BatchViewAugment):
    """``RandomApply([ColorJitter(brightness, contrast, saturation, hue)],
    prob)`` of mmpretrain (pillow backend), batched.

    Per sample: applied with probability ``prob``; factors
    ``b ~ U[max(0, 1 - brightness), 1 + brightness]`` (same for contrast and
    saturation), ``h ~ U[-hue, hue]``; the four adjustments run in a
    uniformly random order (a random permutation of 4 per sample, as
    ``np.random.permutation(4)``). Vectorised as 4 rounds: in round ``j``
    every sample applies its ``j``-th op (sub-batches by op).

    Params: ``apply`` (N,) bool, ``order`` (N, 4) int64 (op ids 0
    brightness, 1 contrast, 2 saturation, 3 hue), ``brightness``,
    ``contrast``, ``saturation``, ``hue`` (N,) float64 (absent when off).
    """
    _OPS = ('brightness', 'contrast', 'saturation', 'hue')
    _FNS = (F.adjust_brightness, F.adjust_contrast, F.adjust_saturation,
            F.adjust_hue)

    def __init__(self, brightness: Union[float, Sequence[float]] = 0.,
                 contrast: Union[float, Sequence[float]] = 0.,
                 saturation: Union[float, Sequence[float]] = 0.,
                 hue: Union[float, Sequence[float]] = 0.,
                 prob: float = 1.0) -> None:
        inf = float('inf')
        self.ranges = {
            'brightness': _range('brightness', brightness, 1., (0, inf)),
            'contrast': _range('contrast', contrast, 1., (0, inf)),
            'saturation': _range('saturation', saturation, 1., (0, inf)),
            'hue': _range('hue', hue, 0., (-0.5, 0.5)),
        }
        self.prob = _check_prob('BatchColorJitter', prob)

    def sample_params(self, n: int, generator: torch.Generator) -> Params:
        params = {'apply': _bernoulli(n, self.prob, generator),
                  'order': torch.rand(n, 4, generator=generator,
                                      dtype=torch.float64).argsort(dim=1)}
        for name in self._OPS:
            rng = self.ranges[name]
            if rng is not None:
                params[name] = _uniform(n, rng[0], rng[1], generator)
        return params

    def apply(self, imgs: Tensor, params: Params) -> Tensor:
        # codes[j][i]: the op sample i applies in round j, -1 if none
        codes = params['order'].cpu().masked_fill(
            ~params['apply'].cpu().view(-1, 1), -1).t().tolist()
        fns = list(self._FNS)
        if self.compile:
            fns[3] = lambda x, f: F.adjust_hue(x, f, compile=True)
        for j in range(4):
            for op, (name, fn) in enumerate(zip(self._OPS, fns)):
                if name in params:
                    rows = [i for i, c in enumerate(codes[j]) if c == op]
                    imgs = self._on(imgs, rows, fn, params[name])
        return imgs

    def __repr__(self) -> str:
        return f'{type(self).__name__}(ranges={self.ranges}, prob={self.prob})'


@BATCH_AUGMENTS.register_module()
class BatchRandomGrayscale(BatchViewAugment):
    """mmcv ``RandomGrayscale(prob, keep_channels=True, channel_weights)``,
    batched: per sample with probability ``prob``, ``g = trunc(sum_c w_c
    x_c / sum w)`` into all 3 channels.

    Args:
        prob: probability per sample (0.1 in mmcv, 0.2 in MoCo v2).
        channel_weights: weights in **BGR** order as mmcv's configs give
            them for BGR images; (0.114, 0.587, 0.2989) is ITU-R 601 luma
            whatever channel order the views were loaded in (the op works on
            RGB tensors and reverses the weights).

    Params: ``apply`` (N,) bool.
    """

    def __init__(self, prob: float = 0.1,
                 channel_weights: Sequence[float] = (0.114, 0.587, 0.2989)
                 ) -> None:
        self.prob = _check_prob('BatchRandomGrayscale', prob)
        if len(channel_weights) != 3 or sum(channel_weights) <= 0:
            raise ValueError('BatchRandomGrayscale: channel_weights must be 3 '
                             f'weights with a positive sum, got '
                             f'{channel_weights}')
        self.channel_weights = tuple(float(w) for w in channel_weights)

    def sample_params(self, n: int, generator: torch.Generator) -> Params:
        return {'apply': _bernoulli(n, self.prob, generator)}

    def apply(self, imgs: Tensor, params: Params) -> Tensor:
        rgb_weights = self.channel_weights[::-1]
        return self._on(imgs, _rows(params['apply']),
                        lambda x: F.grayscale(x, rgb_weights))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(prob={self.prob}, '
                f'channel_weights={self.channel_weights})')


@BATCH_AUGMENTS.register_module()
class BatchGaussianBlur(BatchViewAugment):
    """mmpretrain ``GaussianBlur(magnitude_range=sigma_range,
    magnitude_std='inf', prob)``, batched: per sample with probability
    ``prob``, PIL's ``GaussianBlur(radius=sigma)`` with
    ``sigma ~ U[sigma_range]`` (:func:`view_augment.gaussian_blur`).

    Params: ``apply`` (N,) bool, ``sigma`` (N,) float64 (kept on the CPU:
    the box weights are computed there).
    """
    host_params = ('sigma', )

    def __init__(self, sigma_range: Sequence[float] = (0.1, 2.0),
                 prob: float = 0.5) -> None:
        lo, hi = (float(s) for s in sigma_range)
        if not 0 < lo <= hi:
            raise ValueError('BatchGaussianBlur: sigma_range must be (lo, hi) '
                             f'with 0 < lo <= hi, got {tuple(sigma_range)}')
        self.sigma_range = (lo, hi)
        self.prob = _check_prob('BatchGaussianBlur', prob)

    def sample_params(self, n: int, generator: torch.Generator) -> Params:
        return {'apply': _bernoulli(n, self.prob, generator),
                'sigma': _uniform(n, *self.sigma_range, generator)}

    def apply(self, imgs: Tensor, params: Params) -> Tensor:
        if self.compile:  # the whole batch (one shape per compiled kernel)
            if not bool(params['apply'].any()):
                return imgs
            return F.gaussian_blur(imgs, params['sigma'], compile=True,
                                   select=params['apply'])
        return self._on(imgs, _rows(params['apply']), F.gaussian_blur,
                        params['sigma'])

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(sigma_range={self.sigma_range}, '
                f'prob={self.prob})')


@BATCH_AUGMENTS.register_module()
class BatchSolarize(BatchViewAugment):
    """mmpretrain ``Solarize(thr, prob)``, batched: per sample with
    probability ``prob``, ``x if x < thr else 255 - x`` (BYOL's view 2:
    thr 128, prob 0.2).

    Params: ``apply`` (N,) bool.
    """

    def __init__(self, threshold: float = 128., prob: float = 0.2) -> None:
        self.threshold = float(threshold)
        self.prob = _check_prob('BatchSolarize', prob)

    def sample_params(self, n: int, generator: torch.Generator) -> Params:
        return {'apply': _bernoulli(n, self.prob, generator)}

    def apply(self, imgs: Tensor, params: Params) -> Tensor:
        thr = torch.full((imgs.shape[0], ), self.threshold,
                         device=imgs.device)
        return self._on(imgs, _rows(params['apply']), F.solarize, thr)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(threshold={self.threshold}, '
                f'prob={self.prob})')


@BATCH_AUGMENTS.register_module()
class BatchRandomFlip(BatchViewAugment):
    """mmcv ``RandomFlip(prob, direction='horizontal')``, batched: per
    sample with probability ``prob``, mirror left-right.

    The preprocessor composes the flip into the samples' geometry records
    (``view_geometry``, ``regions``, ``mask``, ``neg_regions``).

    Params: ``flip`` (N,) bool.
    """
    flips = True

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = _check_prob('BatchRandomFlip', prob)

    def sample_params(self, n: int, generator: torch.Generator) -> Params:
        return {'flip': _bernoulli(n, self.prob, generator)}

    def apply(self, imgs: Tensor, params: Params) -> Tensor:
        return self._on(imgs, _rows(params['flip']), F.hflip)

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob})'
