"""Online dense probe of the backbone during pretraining: a per-pixel linear
probe of frozen stage features on a small labelled dense set, logged as
``dense/miou`` beside ``OnlineKNNHook``'s ``knn/top1``."""
import time
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from mmmask.evaluation.dense_probe import dense_probe_miou, stage_features
from mmmask.registry import HOOKS
from .online_probe import OnlineProbeHook

Split = Tuple[np.ndarray, np.ndarray]


@HOOKS.register_module()
class OnlineDenseProbeHook(OnlineProbeHook):
    """Every ``interval`` iterations (or epochs), fit a class-balanced ridge
    probe (``mmmask.evaluation.dense_probe``) on the frozen backbone's
    ``layers`` feature maps of a small labelled dense set and log its mIoU
    (in [0, 1]) on a held-out split as ``dense/miou`` (and the per-position
    accuracy as ``dense/acc``) to the message hub, the visualiser backends
    and the log, with the seconds the evaluation took.

    The default set (``data=None``) is built in memory, without download,
    by ``mmmask.datasets.builtin.dense_splits``: real scikit-learn digits
    (those the demo images leave out; train and val from disjoint halves)
    composited onto crops of the photographs scikit-image / scikit-learn
    ship, 11 classes (background + 10 digits).

    Args:
        interval (int): evaluate every ``interval`` iterations / epochs.
        by_epoch (bool): count ``interval`` in epochs. Default: False.
        layers (sequence of str): backbone submodules whose outputs are
            probed (default C4 and C5 of a ResNet: ``layer3``, ``layer4``).
        num_train, num_val (int): images of each split (48, 48).
        image_size (int): side of the images (96 px).
        grid (int): side of the label grid the features are resized to (12:
            stride 8 at 96 px).
        reg (float): ridge strength relative to the mean feature energy.
        seed (int): the set's seed.
        data (tuple, optional): ``((train_images, train_labels),
            (val_images, val_labels))`` instead of the built-in set: uint8
            (N, H, W, 3) RGB images and (N, H, W) integer label maps.
        num_classes (int, optional): default: the largest label + 1.
        mean, std, to_rgb: input normalisation, default the model's data
            preprocessor's (as ``OnlineKNNHook``). Images are RGB, so the
            preprocessor's BGR -> RGB flip is not applied.
    """

    def __init__(self, interval: int = 100, by_epoch: bool = False,
                 layers: Sequence[str] = ('layer3', 'layer4'),
                 num_train: int = 48, num_val: int = 48,
                 image_size: int = 96, grid: int = 12, reg: float = 1e-2,
                 seed: int = 0, data: Optional[Tuple[Split, Split]] = None,
                 num_classes: Optional[int] = None,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None) -> None:
        super().__init__(interval, by_epoch, mean, std, to_rgb=False)
        if grid < 1 or num_train < 1 or num_val < 1:
            raise ValueError('grid, num_train and num_val must be >= 1')
        self.layers = tuple(layers)
        self.num_train, self.num_val = num_train, num_val
        self.image_size, self.grid, self.reg = image_size, grid, reg
        self.seed, self.num_classes = seed, num_classes
        self._data = data
        self._tensors = None
        self.last_seconds = None

    def _splits(self):
        """((train images, labels), (val images, labels)) as tensors:
        uint8 (N, 3, H, W) and long (N, H, W)."""
        if self._tensors is None:
            data = self._data
            if data is None:
                from mmmask.datasets.builtin import dense_splits
                data = dense_splits(self.num_train, self.num_val,
                                    self.image_size, self.seed)
            self._tensors = tuple(
                (torch.from_numpy(np.ascontiguousarray(images))
                 .permute(0, 3, 1, 2).contiguous(),
                 torch.from_numpy(np.asarray(labels)).long())
                for images, labels in data)
        return self._tensors

    def evaluate(self, runner=None, backbone=None) -> dict:
        """Probe now; returns ``{'miou', 'acc'}`` (and logs them when a
        runner is given). ``backbone`` defaults to the runner model's."""
        start = time.perf_counter()
        model = self.unwrap(runner) if runner is not None else None
        backbone = backbone if backbone is not None else model.backbone
        mean, std, _ = self._normalisation(model)
        (tr_x, tr_y), (va_x, va_y) = self._splits()
        num_classes = self.num_classes or int(max(tr_y.max(),
                                                  va_y.max())) + 1
        feats = [stage_features(backbone, x, self.layers, mean, std,
                                self.grid) for x in (tr_x, va_x)]
        result = dense_probe_miou(feats[0], tr_y, feats[1], va_y,
                                  num_classes, self.reg)
        self.last_seconds = time.perf_counter() - start
        if runner is not None:
            self.log_scalars(
                runner,
                {f'dense/{key}': value for key, value in result.items()},
                f'online dense probe ({"+".join(self.layers)}, '
                f'{len(tr_y)} train / {len(va_y)} val images, '
                f'{num_classes} classes): dense/miou {result["miou"]:.4f}, '
                f'dense/acc {result["acc"]:.4f} '
                f'({self.last_seconds:.2f} s)')
        return result
