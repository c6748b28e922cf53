"""Batched view augmentations: the MoCo v2 colour / blur / flip chain as
tensor operations over a batch, equal to the per-image transforms.

Every function takes images ``imgs`` (N, 3, H, W) float32 holding whole
numbers in [0, 255], channels in **RGB** order, on any device, and per-sample
parameters (N,) on the same device, and returns a new tensor of the same
shape holding whole numbers in [0, 255] again: like the per-image chain
(uint8 arrays between steps), every step rounds to uint8 the way the
per-image step does, so a chain of these functions equals the chain of
per-image transforms (see ``docs/pipeline.md`` and
``tests/test_view_augment.py``).

The per-image references are mmcv's ``adjust_*`` functions with
``backend='pillow'`` (as mmpretrain's ``ColorJitter`` calls them), mmcv's
``RandomGrayscale``, PIL's ``ImageFilter.GaussianBlur`` (mmpretrain's
``GaussianBlur``), mmcv's ``solarize`` and ``imflip``. Where the reference
computes in C ``float`` or ``double`` the step-by-step functions use float32
or float64 at the same step, so that the results agree bit for bit; the fast
paths replace a step by a table built with them, or by float32 where every
possible input was checked (the hue on all 2**24 inputs), and the blur's
fixed-point sums run in int32, where they are exact.
"""
from typing import Optional, Tuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    'pil_luma', 'blend', 'adjust_brightness', 'adjust_contrast',
    'adjust_saturation', 'adjust_hue', 'adjust_hue_reference',
    'rgb_to_hsv_u8', 'hsv_u8_to_rgb',
    'grayscale', 'box_blur_params', 'gaussian_blur', 'compiled', 'solarize',
    'hflip'
]


def _col(x: Tensor, like: Tensor, dtype=None) -> Tensor:
    """(N,) -> (N, 1, 1, 1) on ``like``'s device."""
    x = x.to(device=like.device, dtype=dtype or like.dtype)
    return x.view(-1, 1, 1, 1)


def pil_luma(imgs: Tensor) -> Tensor:
    """PIL's ``convert('L')`` of RGB images, (N, 3, H, W) -> (N, 1, H, W).

    ``L = (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16`` (ITU-R 601-2
    weights in 16-bit fixed point), computed exactly (the weighted sum is a
    whole number below 2**24, so float32 holds it; ``>> 16`` is a floor
    division by 65536)."""
    r, g, b = imgs[:, 0:1], imgs[:, 1:2], imgs[:, 2:3]
    acc = (r * 19595.0).add_(g, alpha=38470.0).add_(b, alpha=7471.0)
    return acc.add_(32768.0).mul_(1.0 / 65536.0).floor_()


def blend(degenerate: Tensor, imgs: Tensor, alpha: Tensor) -> Tensor:
    """PIL's ``Image.blend(degenerate, imgs, alpha)`` per sample.

    ``out = clip(trunc(d + alpha * (x - d)), 0, 255)`` in float32 (PIL's C
    loop: ``(UINT8)((int) d + alpha * ((int) x - (int) d))``, clipped when
    ``alpha`` is outside [0, 1]); every ``ImageEnhance`` class is this blend
    with its own degenerate image. ``x - d`` is exact, ``alpha * (x - d)``
    and the sum round to float32 as in C; 4 passes over the batch.

    Args:
        degenerate: (N, 1 or 3, H, W) or (N, 1, 1, 1), whole numbers.
        imgs: (N, 3, H, W).
        alpha: (N,) enhancement factors (rounded to float32 as PIL's C
            ``float`` argument is).
    """
    a = _col(alpha, imgs, torch.float32)
    out = imgs - degenerate
    return out.mul_(a).add_(degenerate).floor_().clamp_(0.0, 255.0)


def adjust_brightness(imgs: Tensor, factor: Tensor) -> Tensor:
    """``ImageEnhance.Brightness``: blend with black,
    ``out = clip(floor(f * x), 0, 255)`` (``0 + f x`` rounds as ``f x``);
    factor (N,)."""
    a = _col(factor, imgs, torch.float32)
    return (imgs * a).floor_().clamp_(0.0, 255.0)


def adjust_contrast(imgs: Tensor, factor: Tensor) -> Tensor:
    """``ImageEnhance.Contrast``: blend with a constant grey image,
    ``out = clip(floor(m + f * (x - m)), 0, 255)`` where
    ``m = int(mean(L) + 0.5)`` is the rounded mean of the PIL 'L' image
    (:func:`pil_luma`) of each sample; factor (N,)."""
    luma = pil_luma(imgs)
    count = luma.shape[-1] * luma.shape[-2]
    total = luma.sum(dim=(1, 2, 3), dtype=torch.float64)  # exact
    mean = torch.floor(total / count + 0.5).to(imgs.dtype).view(-1, 1, 1, 1)
    return blend(mean, imgs, factor)


def adjust_saturation(imgs: Tensor, factor: Tensor) -> Tensor:
    """``ImageEnhance.Color`` (mmcv ``adjust_color``, pillow backend): blend
    with the image's 'L' version, ``out = clip(floor(L + f * (x - L)), 0,
    255)``; factor (N,)."""
    return blend(pil_luma(imgs), imgs, factor)


def rgb_to_hsv_u8(imgs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """PIL's ``convert('HSV')`` of RGB images: (h, s, v), each (N, H, W)
    float32 holding whole numbers in [0, 255].

    ``v = max``; ``s = trunc(255 * (max - min) / max)``; the hue is
    colorsys's hexcone formula ``h6 = (bc - gc | 2 + rc - bc | 4 + gc - rc)``
    (max in R | G | B) with ``xc = (max - x) / (max - min)``,
    ``h = fmod(h6 / 6 + 1, 1)``, ``h_u8 = trunc(255 * h)``; grey pixels get
    ``h = s = 0``. The precision of each step follows Pillow's C code
    (float, then double)."""
    r, g, b = imgs.unbind(1)
    maxc = torch.maximum(torch.maximum(r, g), b)
    minc = torch.minimum(torch.minimum(r, g), b)
    grey = maxc == minc
    cr = (maxc - minc).masked_fill_(grey, 1.0)
    s = cr / maxc.masked_fill(grey, 1.0)
    # h6 = base + x1c - x2c with (base, x1, x2) = (0, b, g) | (2, r, b) |
    # (4, g, r) for max in R | G | B, xc = (max - x) / cr rounded to float
    # as in C; the sum in double, stored in a float (for base 0 C subtracts
    # two floats: the same rounding of the exact difference).
    r_max, g_max = r == maxc, g == maxc
    x1 = torch.where(r_max, b, torch.where(g_max, r, g))
    x2 = torch.where(r_max, g, torch.where(g_max, b, r))
    base = torch.where(r_max, 0.0, torch.where(g_max, 2.0, 4.0))
    x1c = ((maxc - x1) / cr).double()
    x2c = ((maxc - x2) / cr).double()
    h6 = x1c.add_(base).sub_(x2c).float().double()
    y = h6.div_(6.0).add_(1.0)  # fmod(y, 1) for y in (5/6, 11/6]
    y = torch.where(y >= 1.0, y - 1.0, y).float().double()
    hu = y.mul_(255.0).trunc_().clamp_(0, 255).float().masked_fill_(grey, 0)
    su = s.double().mul_(255.0).trunc_().clamp_(0, 255).float()
    return hu, su.masked_fill_(grey, 0), maxc


def hsv_u8_to_rgb(h: Tensor, s: Tensor, v: Tensor) -> Tensor:
    """PIL's HSV -> RGB of uint8 (h, s, v) planes (N, H, W) -> (N, 3, H, W).

    ``i = floor(6 h / 255)``, ``f = 6 h / 255 - i``, ``fs = s / 255``;
    ``p = round(v (1 - fs))``, ``q = round(v (1 - fs f))``,
    ``t = round(v (1 - fs (1 - f)))``; sector ``i mod 6`` picks
    (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q); ``s = 0`` gives grey.
    Rounding is C's ``round`` (half away from zero)."""
    vd = v.double()
    x6 = h.double().mul_(6.0).div_(255.0)
    i = torch.floor(x6)
    f = (x6 - i).float()
    fs = (s.double() / 255.0).float()
    p = (1.0 - fs.double()).mul_(vd).add_(0.5).floor_().float()
    q = (1.0 - (fs * f).double()).mul_(vd).add_(0.5).floor_().float()
    t = (1.0 - fs.double() * (1.0 - f.double())).mul_(vd).add_(0.5)
    t = t.floor_().float()
    p, q, t = p.clamp_(0, 255), q.clamp_(0, 255), t.clamp_(0, 255)
    sector = i.float()  # h <= 255: i in 0..6, 6 only for h = 255 -> 0
    sector = sector.masked_fill_(sector == 6.0, 0.0)
    sec = [sector == k for k in range(6)]
    red = torch.where(sec[0] | sec[5], v, torch.where(
        sec[1], q, torch.where(sec[4], t, p)))
    green = torch.where(sec[1] | sec[2], v, torch.where(
        sec[0], t, torch.where(sec[3], q, p)))
    blue = torch.where(sec[3] | sec[4], v, torch.where(
        sec[2], t, torch.where(sec[5], q, p)))
    rgb = torch.stack([red, green, blue], dim=1)
    grey = (s == 0).unsqueeze(1)
    return torch.where(grey, v.unsqueeze(1), rgb)


def adjust_hue_reference(imgs: Tensor, factor: Tensor) -> Tensor:
    """mmcv ``adjust_hue`` (pillow backend): PIL RGB -> HSV (uint8), the
    hue plane shifted by ``trunc(255 f)`` modulo 256, HSV -> RGB.

    ``factor`` (N,) in [-0.5, 0.5]. The round trip through uint8 HSV is
    part of the reference (it changes pixels even at ``f = 0``), so it is
    emulated step by step (:func:`rgb_to_hsv_u8`, :func:`hsv_u8_to_rgb`).
    The step-by-step form; :func:`adjust_hue` computes the same values from
    tables built with it."""
    h, s, v = rgb_to_hsv_u8(imgs)
    shift = torch.trunc(factor.double() * 255.0)
    shift = _col(shift, h, torch.float32).view(-1, 1, 1)
    h = torch.remainder(h + shift, 256.0)
    return hsv_u8_to_rgb(h, s, v)


class _HueTables:
    """Tables of PIL's uint8 HSV round trip, built once per device from the
    step-by-step functions (:func:`rgb_to_hsv_u8` and the formulas of
    :func:`hsv_u8_to_rgb`); ``tests/test_view_augment.py`` checks them
    against PIL on all 2**24 colours in both directions.

    * ``hue`` (511 * 511,) float32: the uint8 hue of a colour depends only
      on ``(r - g, g - b)`` (every step of ``rgb_to_hsv_u8`` reads
      differences of channels), so ``h = hue[511 (r - g) + (g - b) +
      511 * 255 + 255]``;
    * ``factor`` (3 * 768 * 256,) float32: per output channel ``c`` and
      ``(h + 256, s)`` (shifted hues index it without a modulo), the factor
      of ``v`` that channel gets in the sector ``i = floor(6 h / 255) mod
      6``: PIL's ``p = v (1 - fs)``, its rising / falling ``q = v (1 - fs
      f)`` (odd sectors) or ``t = v (1 - fs (1 - f))`` (even sectors), or
      ``v`` itself; at ``c * 768 * 256 + 256 (h + 256) + s``.

    With ``f = fl32(6 h / 255 - i)`` and ``fs = fl32(s / 255)`` as in
    Pillow's C code; ``floor(fl32(v * factor) + 0.5)`` equals Pillow's
    double ``round`` on every (h, s, v) (exhaustive test). Which of ``p``,
    the rising / falling value or ``v`` a channel takes follows from its
    cyclic distance ``d = min(|i - c_0|, 6 - |i - c_0|)`` to the sector
    where it is lowest (``c_0`` = 2.5, 4.5, 0.5 for R, G, B): 0.5 -> ``p``,
    1.5 -> the rising / falling one, 2.5 -> ``v`` (the sectors' table of
    :func:`hsv_u8_to_rgb`).
    """
    _cache = {}

    @classmethod
    def get(cls, device: torch.device) -> Tuple[Tensor, Tensor]:
        key = str(device)
        if key not in cls._cache:
            cls._cache[key] = tuple(t.to(device) for t in cls._build())
        return cls._cache[key]

    @staticmethod
    def _build() -> Tuple[Tensor, Tensor]:
        d = torch.arange(-255, 256, dtype=torch.float32)
        dr, dg = d.view(-1, 1).expand(511, 511), d.view(1, -1).expand(511, 511)
        # a colour with these differences (an impossible pair, spread over
        # more than 255, is clipped: its entry is never read)
        b = -torch.minimum(torch.minimum(torch.zeros_like(dg), dg), dg + dr)
        rgb = torch.stack([b + dg + dr, b + dg, b]).clamp_(0, 255)
        hue = rgb_to_hsv_u8(rgb[None])[0].reshape(-1).contiguous()
        h = torch.arange(768, dtype=torch.float64).remainder(256)
        x6 = h * 6.0 / 255.0
        i = torch.floor(x6)
        f = (x6 - i).float()
        sector = i.remainder(6).view(-1, 1)
        fs = (torch.arange(256, dtype=torch.float64) / 255.0).float()
        q = 1.0 - (f.view(-1, 1) * fs.view(1, -1)).double()
        t = 1.0 - fs.double().view(1, -1) * (1.0 - f.double()).view(-1, 1)
        rise_fall = torch.where(sector.remainder(2) == 1, q, t).float()
        low = (1.0 - fs.double()).float().view(1, -1).expand(768, 256)
        factor = []
        for c0 in (2.5, 4.5, 0.5):
            dist = (sector - c0).abs()
            dist = torch.minimum(dist, 6.0 - dist)
            factor.append(torch.where(dist < 1, low, torch.where(
                dist < 2, rise_fall, torch.ones_like(rise_fall))))
        return hue, torch.stack(factor).reshape(-1).contiguous()


def adjust_hue(imgs: Tensor, factor: Tensor, compile: bool = False) -> Tensor:
    """mmcv ``adjust_hue`` (pillow backend), from tables (:class:`_HueTables`):
    the same values as :func:`adjust_hue_reference` in about 20 passes over
    single planes and 5 over the image instead of 100 over the image, and
    no ``where``.

    RGB -> HSV: ``h = hue[r - g, g - b]``, ``v = max``, ``s = trunc(255
    fl32((max - min) / max))`` (float32 is exact here: exhaustive test).
    Shift: ``h' = h + trunc(255 f) + 256`` in [0, 768). HSV -> RGB: each
    channel ``c`` is ``round(v factor[c, h', s])`` (PIL's ``p``, ``q``,
    ``t`` or ``v``). Grey pixels (``s = 0``) come out as ``(v, v, v)`` by
    themselves.

    Args:
        imgs: (N, 3, H, W) float32 RGB whole numbers.
        factor: (N,) in [-0.5, 0.5].
        compile: run the ``torch.compile`` d :func:`_hue_fused` (the same
            values).
    """
    if compile:
        shift = torch.trunc(factor.double() * 255.0) + 256.0
        return compiled('_hue_fused')(
            imgs, _col(shift, imgs, torch.float32).view(-1, 1, 1),
            *_HueTables.get(imgs.device))
    h, s, v = _rgb_to_hsv_tables(imgs)
    return _hsv_to_rgb_tables(h, s, v, factor)


def _rgb_to_hsv_tables(imgs: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """PIL's RGB -> uint8 HSV of (N, 3, H, W) RGB: (h, s, v), (N, H, W)
    float32 each (see :func:`adjust_hue`)."""
    hue_t = _HueTables.get(imgs.device)[0]
    r, g, b = imgs[:, 0], imgs[:, 1], imgs[:, 2]  # (N, H, W) each
    # 511 (r - g) + (g - b) + offset, exact in float32, in one buffer
    idx = torch.mul(r, 511.0).sub_(g, alpha=510.0).sub_(b)
    idx = idx.add_(511 * 255 + 255).to(torch.int32)
    h = hue_t.index_select(0, idx.view(-1)).view_as(r)
    v = torch.maximum(r, g)
    torch.maximum(v, b, out=v)
    cr = torch.minimum(r, g)
    torch.minimum(cr, b, out=cr)
    torch.sub(v, cr, out=cr)
    s = cr.div_(v.clamp_min(1.0)).mul_(255.0).floor_()  # >= 0: trunc
    return h, s, v


def _hsv_to_rgb_tables(h: Tensor, s: Tensor, v: Tensor,
                       factor: Tensor) -> Tensor:
    """PIL's uint8 HSV -> RGB of (h + trunc(255 factor)) mod 256, s, v
    (each (N, H, W); factor (N,)) -> (N, 3, H, W) (see :func:`adjust_hue`).
    Writes into ``h``."""
    factor_t = _HueTables.get(h.device)[1]
    shift = torch.trunc(factor.double() * 255.0) + 256.0
    h = h.add_(_col(shift, h, torch.float32).view(-1, 1, 1))  # [129, 639]
    idx = h.mul_(256.0).add_(s).to(torch.int32).unsqueeze_(1)  # exact
    offsets = torch.arange(0, 3 * 768 * 256, 768 * 256, dtype=torch.int32,
                           device=h.device).view(1, 3, 1, 1)
    idx = (idx + offsets).view(-1)  # (N, 3, H, W) flattened
    out = factor_t.index_select(0, idx).view(h.shape[0], 3, *h.shape[1:])
    return out.mul_(v.unsqueeze(1)).add_(0.5).floor_()


def grayscale(imgs: Tensor, channel_weights=(0.2989, 0.587, 0.114)) -> Tensor:
    """mmcv ``RandomGrayscale(keep_channels=True)``: ``g = trunc((x_B w_B +
    x_G w_G) + x_R w_R)`` in float64 (numpy's order of the weighted sum over
    mmcv's (B, G, R) channels, each product and sum rounded on its own),
    copied to the 3 channels.

    Args:
        imgs: (N, 3, H, W) RGB.
        channel_weights: weights of the (R, G, B) channels of ``imgs``,
            normalised by their sum. mmcv's configs give them for BGR
            images, (0.114, 0.587, 0.2989): the same weights reversed.
    """
    w = torch.tensor(channel_weights, dtype=torch.float64)
    w = (w / w.sum()).tolist()
    g = imgs[:, 2:3].double().mul_(w[2])
    g.add_(imgs[:, 1:2].double().mul_(w[1]))
    g.add_(imgs[:, 0:1].double().mul_(w[0]))
    return g.floor_().float().expand_as(imgs).contiguous()  # g >= 0: trunc


def box_blur_params(sigma: Tensor, passes: int = 3):
    """Pillow's box radius and fixed-point weights for
    ``ImageFilter.GaussianBlur(radius=sigma)``, per sample.

    Pillow approximates a Gaussian of standard deviation ``sigma`` by
    ``passes`` box blurs per axis of an "extended" box (Gwosdek et al.,
    SSVM 2011): with ``s2 = sigma**2 / passes``, box length
    ``L = sqrt(12 s2 + 1)``, integer radius ``l = floor((L - 1) / 2)`` and
    fractional part ``a = (2l + 1)(l(l + 1) - 3 s2) / (6 (s2 - (l + 1)**2))``,
    the box radius is ``r = l + a``. One pass gives each of the ``2k + 1``
    central taps (``k = int(r)``) the weight ``ww = trunc(2**24 / (2r + 1))``
    and each of the two end taps ``fw = (2**24 - (2k + 1) ww) // 2``
    (weights sum to 2**24).

    Args:
        sigma: (N,) float tensor.

    Returns:
        (k, ww, fw): (N,) int64 each.
    """
    # numpy float32 / float64 round as C float / double; for a handful of
    # samples numpy's calls cost less than torch's
    f32 = np.float32
    sig = sigma.detach().cpu().numpy().astype(f32)
    s2 = sig * sig / f32(passes)
    L = np.sqrt(12.0 * s2.astype(np.float64) + 1.0).astype(f32)
    l = np.floor((L.astype(np.float64) - 1.0) / 2.0).astype(f32)  # noqa
    a = (f32(2) * l + f32(1)) * (l * (l + f32(1)) - f32(3) * s2)
    a = a / (f32(6) * (s2 - (l + f32(1)) * (l + f32(1))))
    r = l + a
    k = r.astype(np.int64)  # C (int) truncation, r >= 0
    ww = (f32(16777216.0) / (r * f32(2) + f32(1))).astype(np.int64)
    fw = (16777216 - (2 * k + 1) * ww) // 2
    return torch.from_numpy(k), torch.from_numpy(ww), torch.from_numpy(fw)


def _box_weights(sigma: Tensor, passes: int,
                 select: Optional[Tensor]) -> Tuple[Tensor, Tensor]:
    """A pass's int32 fixed-point weights and rounding term per sample.

    ``w`` (taps + 1, N, 1, 1, 1): per tap offset ``j = 0 .. taps`` (0: the
    centre; ``taps = max k + 1``) ``ww`` for ``j <= k``, ``fw`` for
    ``j = k + 1``, 0 beyond (:func:`box_blur_params`); samples outside
    ``select`` get the identity (centre weight ``2**24``).

    ``bias`` (N, 1, 1, 1): ``2**23 - 128 (2**24 - sum w)``, Pillow's
    rounding term on images centred at 128 (:func:`_box_pass`; the weights
    sum to ``2**24`` or, when ``fw`` was rounded down, one less)."""
    k, ww, fw = (t.numpy() for t in box_blur_params(sigma, passes))
    if select is not None:
        keep = ~select.detach().cpu().numpy()
        k, fw = np.where(keep, 0, k), np.where(keep, 0, fw)
        ww = np.where(keep, 16777216, ww)
    j = np.arange(int(k.max()) + 2 if k.size else 2).reshape(-1, 1)
    w = np.where(j <= k, ww, np.where(j == k + 1, fw, 0))
    bias = 8388608 - 128 * (16777216 - (2 * k + 1) * ww - 2 * fw)
    w = torch.from_numpy(w.astype(np.int32))
    bias = torch.from_numpy(bias.astype(np.int32))
    return w.view(j.shape[0], -1, 1, 1, 1), bias.view(-1, 1, 1, 1)


def _padded(flat: Tensor, shape, dim: int, taps: int) -> Tensor:
    """The front of ``flat`` as a tensor of ``shape`` but ``taps`` wider on
    both sides of ``dim`` (``taps = 0``: ``shape`` itself)."""
    shape = list(shape)
    shape[dim] += 2 * taps
    return flat[:shape[0] * shape[1] * shape[2] * shape[3]].view(shape)


def _replicate_edges(xp: Tensor, dim: int, taps: int) -> None:
    """Fill the ``taps`` pad entries at both ends of ``dim`` with the first
    and last interior entries (edge replication)."""
    size = xp.shape[dim] - 2 * taps
    first = xp.narrow(dim, taps, 1)
    last = xp.narrow(dim, taps + size - 1, 1)
    xp.narrow(dim, 0, taps).copy_(first.expand_as(xp.narrow(dim, 0, taps)))
    xp.narrow(dim, taps + size, taps).copy_(
        last.expand_as(xp.narrow(dim, 0, taps)))


def _box_pass(xp: Tensor, dim: int, w: Tensor, bias: Tensor,
              out: Tensor) -> Tensor:
    """One extended-box pass along ``dim`` (edges replicated), rounded to
    uint8 as Pillow does: ``out = (sum_j w_j x[i + j] + 2**23) >> 24`` with
    ``w_0 = w_{+-1} = ... = w_{+-k} = ww``, ``w_{+-(k+1)} = fw``.

    Exact in int32 on images centred at 128 (``x - 128`` in [-128, 127]):
    the centred sum is the plain one minus ``128 sum w``, which ``bias``
    restores beside the rounding term; the weights are non-negative and sum
    to at most ``2**24``, so every partial sum lies in [-2**31, 2**31) and
    the arithmetic shift is the floor division (the result is centred too).

    Args:
        xp: (N, C, H, W) int32, the centred image padded by ``taps``
            replicated entries on both ends of ``dim``.
        w, bias: (taps + 1, N, 1, 1, 1) and (N, 1, 1, 1) int32
            (:func:`_box_weights`).
        out: (N, C, H, W) int32 (may be the interior of the next pass's
            padded buffer) receives the centred blurred image; returned.
    """
    taps = w.shape[0] - 1
    size = xp.shape[dim] - 2 * taps
    torch.mul(xp.narrow(dim, taps, size), w[0], out=out)
    for j in range(1, taps + 1):  # no pair sums: two in-place steps each
        out.addcmul_(xp.narrow(dim, taps - j, size), w[j])
        out.addcmul_(xp.narrow(dim, taps + j, size), w[j])
    return out.add_(bias).bitwise_right_shift_(24)


def gaussian_blur(imgs: Tensor, sigma: Tensor, passes: int = 3,
                  compile: bool = False,
                  select: Optional[Tensor] = None) -> Tensor:
    """PIL ``ImageFilter.GaussianBlur(radius=sigma)`` per sample: ``passes``
    extended-box passes along x, then along y, each rounded to uint8
    (:func:`box_blur_params` gives the taps; :func:`_box_pass` computes the
    fixed-point sums exactly in int32; a pass writes into the padded buffer
    of the next one).

    Args:
        imgs: (N, 3, H, W).
        sigma: (N,) per-sample sigma (PIL's ``radius``), > 0.
        compile: run the passes as the ``torch.compile`` d
            :func:`_blur_fused` (the same values).
        select: (N,) bool, optional: blur only these samples; the others
            get the identity taps (centre weight ``2**24``, which the
            rounding returns unchanged), so the batch keeps its shape.
    """
    w, bias = (t.to(imgs.device) for t in _box_weights(sigma, passes,
                                                       select))
    if compile:
        return compiled('_blur_fused')(imgs, w, bias, passes)
    out = torch.empty_like(imgs)
    group = imgs.shape[0]
    if imgs.device.type == 'cpu':
        group = max(1, BLUR_CPU_PIXELS // (imgs.shape[-2] * imgs.shape[-1]))
    for i in range(0, imgs.shape[0], group):
        _blur_passes(imgs[i:i + group], w[:, i:i + group], bias[i:i + group],
                     passes, out[i:i + group])
    return out


#: On the CPU the blur's passes run on groups of samples of at most this
#: many pixels per channel: its two int32 work buffers then stay in the
#: core's cache (docs/benchmarks.md).
BLUR_CPU_PIXELS = 2**16


def _blur_passes(imgs: Tensor, w: Tensor, bias: Tensor, passes: int,
                 out: Tensor) -> None:
    """:func:`gaussian_blur`'s eager passes (weights from
    :func:`_box_weights`, on ``imgs``' device) into ``out`` (like
    ``imgs``)."""
    taps = w.shape[0] - 1
    n, c, h, wd = imgs.shape
    # two int32 buffers, used in turn: pass q reads buffer q % 2 padded
    # along its axis and writes the interior of the other one padded along
    # the next pass's axis (the last pass: unpadded); 2 buffers in all keep
    # the working set small (the CPU's cache)
    flat = [imgs.new_empty(n * c * (h + 2 * taps) * (wd + 2 * taps),
                           dtype=torch.int32) for _ in range(2)]
    dims = [3] * passes + [2] * passes
    src = _padded(flat[0], imgs.shape, 3, taps)
    src.narrow(3, taps, wd).copy_(imgs).sub_(128)
    for q, dim in enumerate(dims):
        _replicate_edges(src, dim, taps)
        if q + 1 < len(dims):
            nxt = _padded(flat[(q + 1) % 2], imgs.shape, dims[q + 1], taps)
            dst = nxt.narrow(dims[q + 1], taps, imgs.shape[dims[q + 1]])
        else:
            nxt = dst = _padded(flat[(q + 1) % 2], imgs.shape, 3, 0)
        _box_pass(src, dim, w, bias, dst)
        src = nxt
    torch.add(src, 128, out=out)


def _blur_fused(imgs: Tensor, w: Tensor, bias: Tensor,
                passes: int = 3) -> Tensor:
    """:func:`gaussian_blur`'s passes as one pure function of the image and
    the weights (the int32 arithmetic of :func:`_box_pass`, padding by
    ``cat`` of the edge entries), written for ``torch.compile``: inductor
    fuses each pass into one loop over the image. In eager mode it is slower
    than :func:`gaussian_blur`'s in-place passes."""
    taps = w.shape[0] - 1
    x = imgs.to(torch.int32) - 128
    for dim in (3, 2):
        size = x.shape[dim]
        shape = list(x.shape)
        shape[dim] = taps
        for _ in range(passes):
            xp = torch.cat([x.narrow(dim, 0, 1).expand(shape), x,
                            x.narrow(dim, size - 1, 1).expand(shape)], dim)
            acc = x * w[0]
            for j in range(1, taps + 1):
                acc = (acc + xp.narrow(dim, taps - j, size) * w[j] +
                       xp.narrow(dim, taps + j, size) * w[j])
            x = torch.bitwise_right_shift(acc + bias, 24)
    return (x + 128).to(imgs.dtype)


def _hue_fused(imgs: Tensor, shift: Tensor, hue_t: Tensor,
               factor_t: Tensor) -> Tensor:
    """:func:`adjust_hue`'s arithmetic as one pure function (``shift`` (N,
    1, 1) float32 ``trunc(255 f) + 256``, the :class:`_HueTables`), written
    for ``torch.compile``; the same steps and roundings."""
    r, g, b = imgs[:, 0], imgs[:, 1], imgs[:, 2]
    idx = ((r - g) * 511.0 + (g - b) + (511 * 255 + 255)).long()
    h = hue_t[idx] + shift
    v = torch.maximum(torch.maximum(r, g), b)
    cr = v - torch.minimum(torch.minimum(r, g), b)
    s = torch.floor(cr / torch.clamp_min(v, 1.0) * 255.0)
    hs = (h * 256.0 + s).long()
    return torch.stack([torch.floor(factor_t[c * 768 * 256 + hs] * v + 0.5)
                        for c in range(3)], 1)


_COMPILED = {}


def compiled(name: str):
    """``torch.compile`` of one of this module's pure functions
    (``'_blur_fused'``: called with whole sub-batches, one shape per
    ``cpu_chunk``; ``'_hue_fused'``: called with sub-batches of any size,
    so compiled for dynamic shapes), built on first use and kept for the
    process."""
    if name not in _COMPILED:
        _COMPILED[name] = torch.compile(globals()[name],
                                        dynamic=name == '_hue_fused')
    return _COMPILED[name]


def solarize(imgs: Tensor, threshold: Tensor) -> Tensor:
    """mmcv ``solarize``: ``x if x < thr else 255 - x``; threshold (N,)."""
    thr = _col(threshold, imgs)
    return torch.where(imgs < thr, imgs, 255.0 - imgs)


def hflip(imgs: Tensor) -> Tensor:
    """mmcv ``imflip(direction='horizontal')``: ``out[..., x] =
    in[..., W - 1 - x]``."""
    return imgs.flip(-1)
