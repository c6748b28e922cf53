"""The hook of the checkpoint room: plain checkpoints on save, their
objects back on load, and a loaded checkpoint that must fit the model."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmask.errors import CheckpointError
from mmmask.registry import HOOKS
from .plain import (restore_checkpoint_objects, strip_wrapper_prefix,
                    to_plain_checkpoint)
from .transfer import check_module_against_checkpoint, checkpoint_state_dict


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Store checkpoints as plain values with bare-model keys, restore them
    on load, and refuse a loaded checkpoint that does not fit the model
    (mmengine's ``strict=False`` load only logs a size mismatch) unless the
    config sets ``load_cfg = dict(allow_partial=True)`` (then a warning;
    FSDP shards are not compared). ``warn_unknown``: warn naming values that
    stay of another type (a weights-only load would refuse the file)."""

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
        self._check_fit(runner, checkpoint)
        restore_checkpoint_objects(checkpoint)

    @staticmethod
    def _check_fit(runner, checkpoint: dict) -> None:
        from torch.distributed.fsdp import FullyShardedDataParallel
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        if any(isinstance(m, FullyShardedDataParallel)
               for m in (runner.model, *model.modules())):
            return  # flattened shards: the FSDP strategy loads by itself
        path = str(runner.cfg.get('load_from') or 'the checkpoint')
        report = check_module_against_checkpoint(
            model, checkpoint_state_dict(checkpoint), prefix='',
            name='model', checkpoint=path, strict=False)
        what = report.problems()  # missing, unexpected, mismatched keys
        if not what:
            return
        fit = f'{len(report.loaded)}/{report.total}'
        if not (runner.cfg.get('load_cfg') or {}).get('allow_partial', False):
            raise CheckpointError(
                f'checkpoint {path} does not fit the model ({fit} tensors '
                f'fit): {what}; set load_cfg = dict(allow_partial=True) to '
                'load only the tensors that fit')
        runner.logger.warning(
            f'load_cfg.allow_partial: {fit} tensors of {path} fit the model, '
            f'the rest stay as initialised: {what}')
