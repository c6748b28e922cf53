"""Weighted k-nearest-neighbour classification of frozen features.

The protocol of InstDisc (Wu et al., "Unsupervised Feature Learning via
Non-Parametric Instance Discrimination", CVPR 2018, Sec. 3.4), used by
MoCo, DINO and solo-learn: features are L2-normalised, a test sample's k
most cosine-similar training samples vote for their labels with weight
``exp(sim / T)``, and the class with the largest summed weight wins
(k = 20, T = 0.07).
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ['weighted_knn_scores', 'knn_accuracy', 'extract_features',
           'few_shot_knn_accuracy', 'frozen_outputs']


@torch.no_grad()
def weighted_knn_scores(train_feats: torch.Tensor, train_labels: torch.Tensor,
                        test_feats: torch.Tensor, num_classes: int,
                        k: int = 20, temperature: float = 0.07,
                        chunk_size: int = 256) -> torch.Tensor:
    """Class scores of each test sample.

    Args:
        train_feats: (N, D) features of the labelled set (any scale).
        train_labels: (N, ) long labels in ``[0, num_classes)``.
        test_feats: (M, D) features to classify.
        k: neighbours that vote (clipped to N).
        temperature: T of the vote weights ``exp(cos / T)``.
        chunk_size: test samples per similarity matrix (memory: chunk x N).
    Returns:
        (M, num_classes) summed vote weights.
    """
    if temperature <= 0:
        raise ValueError(f'temperature must be > 0, got {temperature}')
    train = F.normalize(train_feats.float(), dim=1)
    labels = train_labels.long().view(-1)
    k = min(k, train.shape[0])
    out = []
    for start in range(0, test_feats.shape[0], chunk_size):
        test = F.normalize(test_feats[start:start + chunk_size].float(), dim=1)
        sim = test @ train.T  # (m, N) cosine similarities
        top_sim, top_idx = sim.topk(k, dim=1)  # (m, k)
        weights = (top_sim / temperature).exp()
        scores = torch.zeros(test.shape[0], num_classes, dtype=weights.dtype,
                             device=weights.device)
        scores.scatter_add_(1, labels[top_idx], weights)  # vote per class
        out.append(scores)
    return torch.cat(out) if out else torch.zeros(0, num_classes)


def knn_accuracy(train_feats: torch.Tensor, train_labels: torch.Tensor,
                 test_feats: torch.Tensor, test_labels: torch.Tensor,
                 num_classes: Optional[int] = None, k: int = 20,
                 temperature: float = 0.07,
                 topk: Sequence[int] = (1, 5)) -> Dict[str, float]:
    """Top-k accuracies (percent) of the weighted kNN classifier:
    ``{'top1': ..., 'top5': ...}`` (a top-k larger than the number of classes
    is left out)."""
    if num_classes is None:
        num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    scores = weighted_knn_scores(train_feats, train_labels, test_feats,
                                 num_classes, k, temperature)
    result = {}
    for t in topk:
        if t > num_classes:
            continue
        pred = scores.topk(t, dim=1).indices  # (M, t)
        hit = (pred == test_labels.view(-1, 1).to(pred.device)).any(dim=1)
        result[f'top{t}'] = hit.float().mean().item() * 100
    return result


def _labels_of(data_samples) -> torch.Tensor:
    labels = []
    for sample in data_samples:
        label = sample.gt_label if hasattr(sample, 'gt_label') else sample
        labels.append(torch.as_tensor(label).view(-1)[:1])
    return torch.cat(labels)


def frozen_outputs(backbone: nn.Module, batches, mean: Sequence[float],
                   std: Sequence[float], to_rgb: bool = False,
                   device: Optional[torch.device] = None):
    """Run a frozen backbone over batches of raw images; yields
    ``(output, labels)`` per batch.

    The one forward pass of the probes (``extract_features`` here,
    ``mmmask.evaluation.dense_probe.stage_features``): images (0-255 scale)
    are moved to the backbone's device, BGR -> RGB flipped with ``to_rgb``
    and normalised with ``mean`` / ``std``; the backbone runs in eval mode
    without gradients, and its mode is restored when the loop ends.
    ``batches`` yields mmpretrain batches (``dict(inputs=[uint8 (3, H, W),
    ...], data_samples=[DataSample with gt_label, ...])``), ``(images,
    labels)`` pairs or bare image tensors (labels ``None``).
    """
    device = device or next(backbone.parameters()).device
    mean_t = torch.tensor(mean, device=device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=device).view(1, -1, 1, 1)
    was_training = backbone.training
    backbone.eval()
    try:
        for batch in batches:
            if isinstance(batch, dict):
                images, label = batch['inputs'], _labels_of(
                    batch['data_samples'])
            elif isinstance(batch, torch.Tensor):
                images, label = batch, None
            else:
                images, label = batch[0], torch.as_tensor(batch[1])
            if isinstance(images, (list, tuple)):
                images = torch.stack(list(images))
            x = images.to(device).float()
            if to_rgb:
                x = x.flip(1)
            with torch.no_grad():
                out = backbone((x - mean_t) / std_t)
            yield out, label
    finally:
        backbone.train(was_training)


@torch.no_grad()
def extract_features(backbone: nn.Module, dataloader,
                     mean: Sequence[float], std: Sequence[float],
                     to_rgb: bool = False,
                     device: Optional[torch.device] = None
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Global-average-pooled last-stage features and labels of a loader
    (batches as :func:`frozen_outputs` takes them, normalised there)."""
    feats, labels = [], []
    for out, label in frozen_outputs(backbone, dataloader, mean, std,
                                     to_rgb, device):
        out = out[-1] if isinstance(out, (list, tuple)) else out
        if out.dim() == 4:  # (B, C, h, w) -> (B, C)
            out = out.mean(dim=(2, 3))
        feats.append(out.flatten(1).cpu())
        labels.append(label.view(-1).cpu())
    return torch.cat(feats), torch.cat(labels)


def few_shot_knn_accuracy(train_feats: torch.Tensor,
                          train_labels: torch.Tensor,
                          test_feats: torch.Tensor, test_labels: torch.Tensor,
                          shots: int, draws: int = 10, seed: int = 0,
                          k: int = 20, temperature: float = 0.07) -> float:
    """Mean top-1 accuracy (percent) of the weighted kNN over ``draws``
    labelled subsets of ``shots`` training samples per class (seeded
    numpy draws without replacement; a class with fewer samples gives all
    it has)."""
    import numpy as np
    labels = train_labels.long().view(-1)
    num_classes = int(max(labels.max(), test_labels.max())) + 1
    rng = np.random.default_rng(seed)
    accs = []
    for _ in range(draws):
        idx = np.concatenate([
            rng.choice(np.flatnonzero(labels.numpy() == c),
                       min(shots, int((labels == c).sum())), replace=False)
            for c in range(num_classes) if (labels == c).any()])
        idx = torch.from_numpy(idx)
        accs.append(knn_accuracy(train_feats[idx], labels[idx], test_feats,
                                 test_labels, num_classes, k, temperature,
                                 topk=(1, ))['top1'])
    return sum(accs) / len(accs)
