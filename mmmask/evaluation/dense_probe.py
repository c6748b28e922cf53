"""Per-pixel linear probe of frozen backbone feature maps (mIoU).

A cheap dense counterpart of the kNN probe: the maps of some backbone stages
(e.g. C4 and C5 of a ResNet) are each L2-normalised per position, resized to
a common ``grid`` (bilinear) and concatenated; a class-balanced ridge
regression onto one-hot labels (closed form, so deterministic and a few
milliseconds) is fitted on the positions of a training split and predicts
the label of every position of a validation split, whose labels are the
ground truth resized to the grid (nearest). mIoU is the mean over classes of
``TP / (TP + FP + FN)`` (classes absent from both prediction and truth are
left out).
"""
from typing import Dict, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .knn import frozen_outputs

__all__ = ['stage_features', 'fit_ridge_probe', 'mean_iou',
           'dense_probe_miou']


@torch.no_grad()
def stage_features(backbone: nn.Module, images: torch.Tensor,
                   layers: Sequence[str], mean: Sequence[float],
                   std: Sequence[float], grid: int, to_rgb: bool = False,
                   batch_size: int = 32) -> torch.Tensor:
    """Features of the named submodules' outputs on a grid.

    Args:
        images: (N, 3, H, W) uint8 (0-255); BGR -> RGB first with ``to_rgb``.
        layers: names of submodules of ``backbone`` (``named_modules``),
            e.g. ``('layer3', 'layer4')``; their (N, C_l, h_l, w_l) outputs
            are captured by forward hooks.
    Returns:
        (N, sum C_l, grid, grid) float32, each layer L2-normalised over
        channels per position.
    """
    modules = dict(backbone.named_modules())
    missing = [name for name in layers if name not in modules]
    if missing:
        raise ValueError(f'the backbone has no submodule {missing[0]!r} '
                         f'(dense probe layers); it has e.g. '
                         f'{[n for n in modules if n and "." not in n]}')
    captured = {}
    handles = [modules[name].register_forward_hook(
        lambda m, i, o, name=name: captured.__setitem__(name, o))
        for name in layers]
    batches = (images[start:start + batch_size]
               for start in range(0, len(images), batch_size))
    out = []
    try:
        for _ in frozen_outputs(backbone, batches, mean, std, to_rgb):
            maps = [F.interpolate(F.normalize(captured[name].float(), dim=1),
                                  size=(grid, grid), mode='bilinear',
                                  align_corners=False) for name in layers]
            out.append(torch.cat(maps, dim=1).cpu())
    finally:
        for handle in handles:
            handle.remove()
    return torch.cat(out)


def fit_ridge_probe(feats: torch.Tensor, labels: torch.Tensor,
                    num_classes: int, reg: float = 1e-2) -> torch.Tensor:
    """Class-balanced ridge regression onto one-hot labels.

    ``W = (X^T D X + lambda I)^-1 X^T D Y`` with ``X`` the features plus a
    constant column, ``Y`` one-hot, ``D`` the weight ``1 / count(class)`` of
    each position and ``lambda = reg * trace(X^T D X) / dim``.

    Args:
        feats: (P, C) features of P positions. labels: (P, ) long.
    Returns:
        (C + 1, num_classes) weights (last row: bias); scores ``[x, 1] @ W``.
    """
    x = torch.cat([feats.float(), feats.new_ones(len(feats), 1).float()],
                  dim=1)
    counts = torch.bincount(labels, minlength=num_classes).float()
    w = (1.0 / counts.clamp(min=1))[labels]  # (P, )
    y = F.one_hot(labels, num_classes).float()
    xw = x * w[:, None]
    # float32 products, the (C + 1) x (C + 1) solve in float64
    xtx, xty = (x.T @ xw).double(), (xw.T @ y).double()
    lam = reg * torch.trace(xtx) / x.shape[1]
    eye = torch.eye(x.shape[1], dtype=xtx.dtype)
    return torch.linalg.solve(xtx + lam * eye, xty).float()


def mean_iou(pred: torch.Tensor, target: torch.Tensor,
             num_classes: int) -> Dict[str, float]:
    """``{'miou': ..., 'acc': ...}`` in [0, 1] of integer label tensors of
    one shape; classes absent from both are left out of the mean."""
    pred, target = pred.reshape(-1).long(), target.reshape(-1).long()
    confusion = torch.bincount(target * num_classes + pred,
                               minlength=num_classes ** 2).view(
                                   num_classes, num_classes).double()
    tp = confusion.diag()
    union = confusion.sum(0) + confusion.sum(1) - tp
    present = union > 0
    miou = (tp[present] / union[present]).mean().item() if present.any() \
        else 0.0
    return dict(miou=miou, acc=(tp.sum() / confusion.sum()).item())


def _positions(feats: torch.Tensor, labels: torch.Tensor):
    """(N, C, g, g) maps and (N, H, W) labels -> (N g g, C), (N g g, )."""
    grid = feats.shape[-1]
    small = F.interpolate(labels[:, None].float(), size=(grid, grid),
                          mode='nearest')[:, 0].long()
    return feats.permute(0, 2, 3, 1).reshape(-1, feats.shape[1]), \
        small.reshape(-1)


def dense_probe_miou(train_feats: torch.Tensor, train_labels: torch.Tensor,
                     val_feats: torch.Tensor, val_labels: torch.Tensor,
                     num_classes: int, reg: float = 1e-2) -> Dict[str, float]:
    """Fit the ridge probe on the training maps, score the validation maps.

    Args:
        train_feats, val_feats: (N, C, g, g) from :func:`stage_features`.
        train_labels, val_labels: (N, H, W) integer label maps.
    Returns:
        ``{'miou', 'acc'}`` in [0, 1] on the validation positions.
    """
    x_tr, y_tr = _positions(train_feats, train_labels)
    x_va, y_va = _positions(val_feats, val_labels)
    weights = fit_ridge_probe(x_tr, y_tr, num_classes, reg)
    scores = torch.cat([x_va, x_va.new_ones(len(x_va), 1)], dim=1) @ weights
    return mean_iou(scores.argmax(1), y_va, num_classes)
