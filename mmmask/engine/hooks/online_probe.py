"""What the online probes of the backbone share: when they run, the model
behind a wrapper, the input normalisation and how a result is logged."""
from typing import Dict, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

_IMAGENET_MEAN = (123.675, 116.28, 103.53)
_IMAGENET_STD = (58.395, 57.12, 57.375)


class OnlineProbeHook(Hook):
    """Base of ``OnlineKNNHook`` and ``OnlineDenseProbeHook``: every
    ``interval`` epochs (``by_epoch``) or iterations it calls
    ``self.evaluate(runner)``; subclasses implement ``evaluate`` and log
    with :meth:`log_scalars`.

    Args:
        interval (int): evaluate every ``interval`` epochs / iterations.
        by_epoch (bool): count ``interval`` in epochs (True) or iterations.
        mean, std (sequence, optional): input normalisation; default the
            model's data preprocessor's (else ImageNet's).
        to_rgb (bool, optional): BGR -> RGB; default the model config's
            ``data_preprocessor.to_rgb`` (or ``bgr_to_rgb``).
    """
    priority = 'LOW'

    def __init__(self, interval: int, by_epoch: bool,
                 mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 to_rgb: Optional[bool] = None) -> None:
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        self.interval, self.by_epoch = interval, by_epoch
        self.mean, self.std, self.to_rgb = mean, std, to_rgb

    @staticmethod
    def unwrap(runner):
        """The runner's model, without its DDP / FSDP wrapper."""
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def _normalisation(self, model, preprocessor_cfg=None):
        """(mean, std, to_rgb): the hook's own, else the model's data
        preprocessor's ``mean`` / ``std`` buffers and its config's
        ``to_rgb`` (or mmengine's ``bgr_to_rgb``)."""
        pre = getattr(model, 'data_preprocessor', None)
        mean, std, to_rgb = self.mean, self.std, self.to_rgb
        pre_mean, pre_std = (getattr(pre, 'mean', None),
                             getattr(pre, 'std', None))
        if mean is None:
            mean = (pre_mean.view(-1).tolist() if pre_mean is not None
                    else _IMAGENET_MEAN)
        if std is None:
            std = (pre_std.view(-1).tolist() if pre_std is not None
                   else _IMAGENET_STD)
        if to_rgb is None:
            cfg = preprocessor_cfg or {}
            to_rgb = bool(cfg.get('to_rgb', cfg.get('bgr_to_rgb', False)))
        return mean, std, to_rgb

    def log_scalars(self, runner, scalars: Dict[str, float],
                    message: str) -> None:
        """``scalars`` to the message hub and the visualiser backends (at
        the step being finished), ``message`` to the log."""
        # called from after_train_epoch / _iter, before the counter moves
        step = (runner.epoch if self.by_epoch else runner.iter) + 1
        for key, value in scalars.items():
            runner.message_hub.update_scalar(key, value)
        runner.visualizer.add_scalars(scalars, step=step)
        runner.logger.info(message)

    def evaluate(self, runner) -> dict:
        raise NotImplementedError  # pragma: no cover (abstract)

    def after_train_epoch(self, runner) -> None:
        if self.by_epoch and self.every_n_epochs(runner, self.interval):
            self.evaluate(runner)

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        if not self.by_epoch and self.every_n_train_iters(runner,
                                                          self.interval):
            self.evaluate(runner)
