"""Masked-patch reconstruction losses (MAE family) as pure functions."""
import torch

__all__ = ['patchify', 'unpatchify', 'patch_stats', 'patch_pixel_targets',
           'masked_patch_loss']


def patchify(imgs: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, L, p*p*C), tokens in raster order, pixels of a
    patch ordered (row, col, channel) as MAE's ``patchify``."""
    n, c, h, w = imgs.shape
    p = patch_size
    if h % p or w % p:
        raise ValueError(f'image {h} x {w} is not a multiple of the patch '
                         f'size {p}')
    x = imgs.reshape(n, c, h // p, p, w // p, p)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(n, (h // p) * (w // p),
                                                p * p * c)


def unpatchify(x: torch.Tensor, patch_size: int, grid: tuple,
               channels: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify`: (N, L, p*p*C) -> (N, C, h*p, w*p)."""
    n = x.shape[0]
    h, w = grid
    p = patch_size
    x = x.reshape(n, h, w, p, p, channels).permute(0, 5, 1, 3, 2, 4)
    return x.reshape(n, channels, h * p, w * p)


def patch_stats(patches: torch.Tensor, eps: float = 1e-6):
    """Per-patch mean and ``sqrt(var + eps)`` (unbiased variance) of
    patchified pixels (N, L, D): what :func:`patch_pixel_targets` normalises
    by, and what a reconstruction is de-normalised with."""
    mean = patches.mean(dim=-1, keepdim=True)
    std = (patches.var(dim=-1, keepdim=True) + eps)**.5
    return mean, std


def patch_pixel_targets(imgs: torch.Tensor, patch_size: int,
                        norm_pix: bool = True,
                        eps: float = 1e-6) -> torch.Tensor:
    """MAE's targets: patchified pixels, each patch normalised by its own
    mean and (unbiased) variance, ``(x - mean) / sqrt(var + eps)``
    (MAE Sec. 3, "normalized pixels"). (N, C, H, W) -> (N, L, p*p*C)."""
    target = patchify(imgs, patch_size)
    if norm_pix:
        mean, std = patch_stats(target, eps)
        target = (target - mean) / std
    return target


def masked_patch_loss(pred: torch.Tensor, target: torch.Tensor,
                      mask: torch.Tensor, kind: str = 'mse') -> torch.Tensor:
    """Mean over masked patches of the per-patch mean error.

    ``L = sum_i m_i * mean_j e(pred_ij - target_ij) / sum_i m_i`` with
    ``e = x^2`` (``'mse'``, MAE / CMAE) or ``|x|`` (``'l1'``, MACRL).

    Args:
        pred, target: (N, L, D).
        mask: (N, L) or (N, h, w) bool / {0, 1}; 1 = masked.
    Returns:
        scalar (0 when nothing is masked).
    """
    if kind not in ('mse', 'l1'):
        raise ValueError(f"kind must be 'mse' or 'l1', got {kind!r}")
    diff = pred.float() - target.float()
    err = diff.pow(2) if kind == 'mse' else diff.abs()
    m = mask.reshape(mask.shape[0], -1).to(err.dtype)  # (N, L)
    per_patch = err.mean(dim=-1)  # (N, L)
    return (per_patch * m).sum() / m.sum().clamp(min=1.0)
