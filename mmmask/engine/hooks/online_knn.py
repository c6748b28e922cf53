"""Online kNN evaluation of the backbone during pretraining (as solo-learn's
online kNN; no OpenMMLab tool has it)."""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmask.evaluation.knn import extract_features, knn_accuracy
from mmmask.registry import HOOKS

_IMAGENET_MEAN = (123.675, 116.28, 103.53)
_IMAGENET_STD = (58.395, 57.12, 57.375)


@HOOKS.register_module()
class OnlineKNNHook(Hook):
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
    priority = 'LOW'

    def __init__(self, train_dataloader, val_dataloader, interval: int = 1,
                 by_epoch: bool = True, k: int = 20,
                 temperature: float = 0.07,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 to_rgb: Optional[bool] = None) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.train_dataloader_cfg = train_dataloader
        self.val_dataloader_cfg = val_dataloader
        self.interval, self.by_epoch = interval, by_epoch
        self.k, self.temperature = k, temperature
        self.mean, self.std, self.to_rgb = mean, std, to_rgb
        self._loaders = None

    def _build_loaders(self, runner):
        if self._loaders is None:
            seed = runner.seed
            self._loaders = tuple(
                runner.build_dataloader(cfg, seed=seed)
                for cfg in (self.train_dataloader_cfg,
                            self.val_dataloader_cfg))
        return self._loaders

    def _normalisation(self, model, preprocessor_cfg=None):
        """(mean, std, to_rgb): the hook's own, else the model's data
        preprocessor's ``mean`` / ``std`` buffers and its config's
        ``to_rgb`` (or mmengine's ``bgr_to_rgb``)."""
        pre = getattr(model, 'data_preprocessor', None)
        mean, std, to_rgb = self.mean, self.std, self.to_rgb
        if mean is None:
            mean = (getattr(pre, 'mean', None).view(-1).tolist()
                    if getattr(pre, 'mean', None) is not None
                    else _IMAGENET_MEAN)
        if std is None:
            std = (getattr(pre, 'std', None).view(-1).tolist()
                   if getattr(pre, 'std', None) is not None
                   else _IMAGENET_STD)
        if to_rgb is None:
            cfg = preprocessor_cfg or {}
            to_rgb = bool(cfg.get('to_rgb', cfg.get('bgr_to_rgb', False)))
        return mean, std, to_rgb

    def evaluate(self, runner) -> dict:
        """Run the kNN evaluation now and log it; returns the accuracies."""
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
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
        # called from after_train_epoch / _iter, before the counter moves
        step = (runner.epoch if self.by_epoch else runner.iter) + 1
        scalars = {f'knn/{key}': value for key, value in acc.items()}
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
        runner.visualizer.add_scalars(scalars, step=step)
        runner.logger.info(
            f'online kNN (k={self.k}, T={self.temperature}, '
            f'{len(train_y)} train / {len(val_y)} val): ' +
            ', '.join(f'{k} {v:.2f}' for k, v in scalars.items()))
        return acc

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self.evaluate(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not self.by_epoch and self.every_n_train_iters(runner,
                                                          self.interval):
            self.evaluate(runner)
