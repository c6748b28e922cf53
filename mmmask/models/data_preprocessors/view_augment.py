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
computes in C ``float`` or ``double`` the functions here use float32 or
float64 at the same step, so that the results agree bit for bit.
"""
from typing import Tuple

import torch
from torch import Tensor

__all__ = [
    'pil_luma', 'blend', 'adjust_brightness', 'adjust_contrast',
    'adjust_saturation', 'adjust_hue', 'rgb_to_hsv_u8', 'hsv_u8_to_rgb',
    'grayscale', 'box_blur_params', 'gaussian_blur', 'solarize', 'hflip'
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
    with its own degenerate image.

    Args:
        degenerate: (N, 1 or 3, H, W) or broadcastable, whole numbers.
        imgs: (N, 3, H, W).
        alpha: (N,) enhancement factors (rounded to float32 as PIL's C
            ``float`` argument is).
    """
    n = imgs.shape[0]
    a = alpha.to(device=imgs.device, dtype=torch.float32).view(n, 1, 1)
    out = (imgs - degenerate).view(n, imgs.shape[1], -1)
    if degenerate.dim() == 4 and degenerate.shape[-1] == 1:  # per sample
        out.mul_(a).add_(degenerate.view(n, 1, 1))
    else:
        out.mul_(a)
        out = out.view_as(imgs).add_(degenerate)
    return out.view_as(imgs).floor_().clamp_(0.0, 255.0)


def adjust_brightness(imgs: Tensor, factor: Tensor) -> Tensor:
    """``ImageEnhance.Brightness``: blend with black,
    ``out = clip(floor(f * x), 0, 255)``; factor (N,)."""
    return blend(torch.zeros((), device=imgs.device), imgs, factor)


def adjust_contrast(imgs: Tensor, factor: Tensor) -> Tensor:
    """``ImageEnhance.Contrast``: blend with a constant grey image,
    ``out = clip(floor(m + f * (x - m)), 0, 255)`` where
    ``m = int(mean(L) + 0.5)`` is the rounded mean of the PIL 'L' image
    (:func:`pil_luma`) of each sample; factor (N,)."""
    luma = pil_luma(imgs)
    count = luma.shape[-1] * luma.shape[-2]
    total = luma.double().sum(dim=(1, 2, 3))  # exact (whole numbers)
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


def adjust_hue(imgs: Tensor, factor: Tensor) -> Tensor:
    """mmcv ``adjust_hue`` (pillow backend): PIL RGB -> HSV (uint8), the
    hue plane shifted by ``trunc(255 f)`` modulo 256, HSV -> RGB.

    ``factor`` (N,) in [-0.5, 0.5]. The round trip through uint8 HSV is
    part of the reference (it changes pixels even at ``f = 0``), so it is
    emulated step by step (:func:`rgb_to_hsv_u8`, :func:`hsv_u8_to_rgb`)."""
    h, s, v = rgb_to_hsv_u8(imgs)
    shift = torch.trunc(factor.double() * 255.0)
    shift = _col(shift, h, torch.float32).view(-1, 1, 1)
    h = torch.remainder(h + shift, 256.0)
    return hsv_u8_to_rgb(h, s, v)


def grayscale(imgs: Tensor, channel_weights=(0.2989, 0.587, 0.114)) -> Tensor:
    """mmcv ``RandomGrayscale(keep_channels=True)``: ``g = trunc(sum_c w_c
    x_c / sum w)`` in float64, copied to the 3 channels.

    Args:
        channel_weights: weights of the (R, G, B) channels of ``imgs``.
            mmcv's configs give them for BGR images, (0.114, 0.587, 0.2989):
            the same weights reversed. The sum runs in mmcv's (B, G, R)
            channel order.
    """
    w = torch.tensor(channel_weights, dtype=torch.float64)
    w = (w / w.sum()).tolist()
    x = imgs.double()
    g = (x[:, 2:3] * w[2] + x[:, 1:2] * w[1]) + x[:, 0:1] * w[0]
    return torch.trunc(g).float().expand_as(imgs).contiguous()


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
        sigma: (N,) float (CPU).

    Returns:
        (k, ww, fw): (N,) int64 each.
    """
    f32 = torch.float32
    sig = sigma.to(f32)
    s2 = sig * sig / passes
    L = torch.sqrt(12.0 * s2.double() + 1.0).to(f32)
    l = torch.floor((L.double() - 1.0) / 2.0).to(f32)  # noqa: E741
    a = (2 * l + 1) * (l * (l + 1) - 3 * s2)
    a = a / (6 * (s2 - (l + 1) * (l + 1)))
    r = l + a
    k = r.to(torch.int64)  # C (int) truncation, r >= 0
    ww = (torch.tensor(16777216.0, dtype=f32) / (r * 2 + 1)).to(torch.int64)
    fw = (16777216 - (2 * k + 1) * ww) // 2
    return k, ww, fw


def _box_pass(x: Tensor, dim: int, w_hi: Tensor, w_lo: Tensor,
              kmax: int) -> Tensor:
    """One extended-box pass along ``dim`` (edges replicated), rounded to
    uint8: ``(ww x[i] + sum_{j>=1} w_j (x[i-j] + x[i+j]) + 2**23) >> 24``
    with ``w_j = ww`` for ``j <= k``, ``fw`` for ``j = k + 1``, else 0.

    Exact in float32: each weight is split as ``w = 4096 w_hi + w_lo``
    (both < 4096), so ``H = sum w_hi x`` and ``L = sum w_lo x`` are whole
    numbers below 2**24, and the result is
    ``floor((H + floor((L + 2**23) / 4096)) / 4096)`` (= the 2**24 fixed
    point rounding). Fused multiply-adds change nothing.

    x (N, C, H, W) float32 whole numbers, contiguous; w_hi / w_lo
    (kmax + 2, N, 1) float32 (index 0: the centre tap ``ww``)."""
    n, size = x.shape[0], x.shape[dim]
    pad = kmax + 1
    first = x.narrow(dim, 0, 1)
    last = x.narrow(dim, size - 1, 1)
    reps = [1] * x.dim()
    reps[dim] = pad
    xp = torch.cat([first.expand_as(first).repeat(reps), x,
                    last.repeat(reps)], dim=dim)
    x2 = x.view(n, -1)
    hi = x2 * w_hi[0]
    lo = x2 * w_lo[0]
    for j in range(1, pad + 1):
        pair = xp.narrow(dim, pad - j, size) + xp.narrow(dim, pad + j, size)
        pair = pair.view(n, -1)
        hi.addcmul_(pair, w_hi[j])
        lo.addcmul_(pair, w_lo[j])
    lo.add_(8388608.0).mul_(1.0 / 4096.0).floor_()
    hi.add_(lo).mul_(1.0 / 4096.0).floor_()
    return hi.view_as(x)


def gaussian_blur(imgs: Tensor, sigma: Tensor, passes: int = 3) -> Tensor:
    """PIL ``ImageFilter.GaussianBlur(radius=sigma)`` per sample: ``passes``
    extended-box passes along x, then along y, each rounded to uint8
    (:func:`box_blur_params` gives the taps; :func:`_box_pass` computes the
    fixed-point sums exactly in float32).

    Args:
        imgs: (N, 3, H, W).
        sigma: (N,) per-sample sigma (PIL's ``radius``), > 0.
    """
    k, ww, fw = box_blur_params(sigma.detach().cpu(), passes)
    kmax = int(k.max()) if k.numel() else 0
    j = torch.arange(kmax + 2).view(-1, 1)
    w = torch.where(j <= k, ww, torch.where(j == k + 1, fw,
                                            torch.zeros_like(fw)))
    w_hi = (w // 4096).to(device=imgs.device, dtype=torch.float32)
    w_lo = (w % 4096).to(device=imgs.device, dtype=torch.float32)
    w_hi, w_lo = w_hi.unsqueeze(-1), w_lo.unsqueeze(-1)  # (kmax + 2, N, 1)
    x = imgs.contiguous()
    for dim in (3, 2):
        for _ in range(passes):
            x = _box_pass(x, dim, w_hi, w_lo, kmax)
    return x


def solarize(imgs: Tensor, threshold: Tensor) -> Tensor:
    """mmcv ``solarize``: ``x if x < thr else 255 - x``; threshold (N,)."""
    thr = _col(threshold, imgs)
    return torch.where(imgs < thr, imgs, 255.0 - imgs)


def hflip(imgs: Tensor) -> Tensor:
    """mmcv ``imflip(direction='horizontal')``: ``out[..., x] =
    in[..., W - 1 - x]``."""
    return imgs.flip(-1)
