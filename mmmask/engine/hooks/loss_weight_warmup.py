"""Warm-up of a loss weight held as an attribute of the algorithm."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmask.registry import HOOKS


@HOOKS.register_module()
class LossWeightWarmupHook(Hook):
    """Hold ``model.<attr>`` at ``warmup_value`` for the first
    ``warmup_iters`` iterations, then restore the configured value.

    DenseCL (Sec. 4): ``attr='loss_lambda'``, lambda = 0 for the first
    iterations (the authors suggest 10000 when used; off by default in the
    configs).

    Args:
        warmup_iters (int): iterations at ``warmup_value``.
        attr (str): the algorithm's attribute (default ``'loss_lambda'``).
        warmup_value (float): value during the warm-up (0).
    """

    priority = 'NORMAL'

    def __init__(self, warmup_iters: int = 10000, attr: str = 'loss_lambda',
                 warmup_value: float = 0.0) -> None:
        if warmup_iters < 0:
            raise ValueError(f'warmup_iters must be >= 0, got {warmup_iters}')
        self.warmup_iters = warmup_iters
        self.attr = attr
        self.warmup_value = warmup_value
        self._target: Optional[float] = None

    def _model(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        if not hasattr(model, self.attr):
            raise AttributeError(
                f'LossWeightWarmupHook: {type(model).__name__} has no '
                f'attribute {self.attr!r} to warm up')
        return model

    def before_train(self, runner) -> None:
        self._target = float(getattr(self._model(runner), self.attr))

    def before_train_iter(self, runner, batch_idx: int,
                          data_batch=None) -> None:
        value = (self.warmup_value if runner.iter < self.warmup_iters
                 else self._target)
        setattr(self._model(runner), self.attr, value)
