"""Online kNN evaluation of the backbone during pretraining (as solo-learn's
online kNN; no OpenMMLab tool has it)."""
from typing import Optional, Sequence

from mmmask.evaluation.knn import extract_features, knn_accuracy
from mmmask.registry import HOOKS
from .online_probe import OnlineProbeHook


@HOOKS.register_module()
class OnlineKNNHook(OnlineProbeHook):
    """Every ``interval`` epochs (or iterations), classify a held-out split
    with a weighted kNN on the current backbone's pooled features and log
    the top-1 accuracy (percent) as ``knn/top1`` (message hub, visualiser
    backends, log), and ``knn/top5`` where there are more than 5 classes.

    Args:
        train_dataloader (dict | DataLoader): the labelled memory bank
            (an mmpretrain classification dataset config, e.g. a small
            ImageNet subset with ``PackInputs``).
        val_dataloader (dict | DataLoader): the split to classify.
        interval (int): evaluate every ``interval`` epochs / iterations.
        by_epoch (bool): count ``interval`` in epochs (True) or iterations.
        k (int): neighbours (20). temperature (float): T (0.07).
        mean, std (sequence, optional): input normalisation; default the
            model's data preprocessor's (else ImageNet's).
        to_rgb (bool, optional): BGR -> RGB; default the model config's
            ``data_preprocessor.to_rgb`` (or ``bgr_to_rgb``).
    """

    def __init__(self, train_dataloader, val_dataloader, interval: int = 1,
                 by_epoch: bool = True, k: int = 20,
                 temperature: float = 0.07,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 to_rgb: Optional[bool] = None) -> None:
        super().__init__(interval, by_epoch, mean, std, to_rgb)
        self.train_dataloader_cfg = train_dataloader
        self.val_dataloader_cfg = val_dataloader
        self.k, self.temperature = k, temperature
        self._loaders = None

    def _build_loaders(self, runner):
        if self._loaders is None:
            seed = runner.seed
            self._loaders = tuple(
                runner.build_dataloader(cfg, seed=seed)
                for cfg in (self.train_dataloader_cfg,
                            self.val_dataloader_cfg))
        return self._loaders

    def evaluate(self, runner) -> dict:
        """Run the kNN evaluation now and log it; returns the accuracies."""
        model = self.unwrap(runner)
        train_loader, val_loader = self._build_loaders(runner)
        model_cfg = runner.cfg.get('model') or {}
        mean, std, to_rgb = self._normalisation(
            model, model_cfg.get('data_preprocessor'))
        train_x, train_y = extract_features(model.backbone, train_loader,
                                            mean, std, to_rgb)
        val_x, val_y = extract_features(model.backbone, val_loader, mean,
                                        std, to_rgb)
        num_classes = int(max(train_y.max(), val_y.max())) + 1
        acc = knn_accuracy(train_x, train_y, val_x, val_y, num_classes,
                           self.k, self.temperature)
        self.log_scalars(
            runner, {f'knn/{key}': value for key, value in acc.items()},
            f'online kNN (k={self.k}, T={self.temperature}, '
            f'{len(train_y)} train / {len(val_y)} val): ' +
            ', '.join(f'knn/{k} {v:.2f}' for k, v in acc.items()))
        return acc
