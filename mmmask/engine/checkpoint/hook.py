"""The hook of the checkpoint room: plain checkpoints on save, their
objects back on load."""
from mmengine.hooks import Hook

from mmmask.registry import HOOKS
from .plain import (restore_checkpoint_objects, strip_wrapper_prefix,
                    to_plain_checkpoint)

__all__ = ['SafeCheckpointHook']


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Store checkpoints as plain values and restore them on load.

    ``before_save_checkpoint``: the model's keys as the bare model names them
    (:func:`~.plain.strip_wrapper_prefix`), then
    :func:`~.plain.to_plain_checkpoint`: the file loads with
    ``torch.load(path, weights_only=True)`` in any process.

    ``after_load_checkpoint`` (``Runner.load_checkpoint`` and
    ``Runner.resume`` call it before the state dict reaches the model):
    the marked dicts become HistoryBuffer objects again, so the logged
    scalars resume.

    Priority ``VERY_HIGH`` makes both run before other hooks'.

    Args:
        warn_unknown (bool): warn naming checkpoint values that stay of
            another type (a weights-only load would refuse the file).
    """

    priority = 'VERY_HIGH'

    def __init__(self, warn_unknown: bool = True) -> None:
        self.warn_unknown = warn_unknown

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        strip_wrapper_prefix(checkpoint)
        unknown = to_plain_checkpoint(checkpoint)
        if unknown and self.warn_unknown:
            runner.logger.warning(
                'SafeCheckpointHook: these checkpoint values are not plain '
                'data, so torch.load(weights_only=True) will refuse the '
                'file: ' + '; '.join(unknown))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        restore_checkpoint_objects(checkpoint)
