"""Checkpoints that ``torch.load(path, weights_only=True)`` accepts as they
are, with no allow-list, and that still resume the message hub."""
from collections import OrderedDict

from mmengine.hooks import Hook

from mmmask.engine.checkpoint import (restore_checkpoint_objects,
                                      to_plain_checkpoint)
from mmmask.registry import HOOKS

__all__ = ['SafeCheckpointHook', 'strip_wrapper_prefix']


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Store checkpoints as plain values and restore them on load.

    ``before_save_checkpoint`` runs
    :func:`~mmmask.engine.checkpoint.to_plain_checkpoint` on the checkpoint
    dict that ``Runner.save_checkpoint`` is about to write: the message hub's
    :class:`~mmengine.logging.HistoryBuffer` objects become marked dicts of
    tensors, numpy arrays become tensors (or lists) and numpy scalars Python
    scalars, wherever they are (``message_hub``, ``meta``, ...). The file
    then loads with ``torch.load(path, weights_only=True)`` in any process,
    e.g. by a stock mmdet / mmseg ``init_cfg=dict(type='Pretrained', ...)``.

    ``after_load_checkpoint`` (called by ``Runner.load_checkpoint`` before
    ``Runner.resume`` hands ``checkpoint['message_hub']`` to
    ``MessageHub.load_state_dict``) turns the marked dicts back into
    HistoryBuffer objects, so the logged scalars resume; checkpoints without
    marked dicts are left alone.

    Priority ``VERY_HIGH`` (the default here and in
    ``configs/_base_/default_runtime.py``) makes the restoration run before
    other hooks' ``after_load_checkpoint``. Values that another hook adds in
    its own ``before_save_checkpoint`` after this one (mmengine's EMAHook
    adds only tensors) are not converted.

    Args:
        warn_unknown (bool): log a warning naming values of types other than
            plain Python values, tensors, numpy values and HistoryBuffer
            that remain in the checkpoint (a weights-only load would refuse
            them). Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, warn_unknown: bool = True) -> None:
        self.warn_unknown = warn_unknown

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Convert ``checkpoint`` to plain values, in place, with the model's
        keys as the bare model names them."""
        strip_wrapper_prefix(checkpoint)
        unknown = to_plain_checkpoint(checkpoint)
        if unknown and self.warn_unknown:
            runner.logger.warning(
                'SafeCheckpointHook: these checkpoint values are not plain '
                'data, so torch.load(weights_only=True) will refuse the '
                'file: ' + '; '.join(unknown))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Turn the marked HistoryBuffer dicts back into objects, in place."""
        restore_checkpoint_objects(checkpoint)


def strip_wrapper_prefix(checkpoint: dict) -> None:
    """``module.backbone.x`` -> ``backbone.x`` in ``checkpoint['state_dict']``
    when every key has the prefix (mmengine's ``DDPStrategy`` of the
    ``FlexibleRunner`` saves the wrapper's state dict; the ``Runner`` and
    ``FSDPStrategy`` save the model's). Downstream configs load the backbone
    with ``prefix='backbone.'``; resuming accepts either form."""
    state = checkpoint.get('state_dict')
    if isinstance(state, dict) and state and all(
            isinstance(k, str) and k.startswith('module.') for k in state):
        items = [(k[len('module.'):], v) for k, v in state.items()]
        stripped = type(state)(items) if isinstance(state, OrderedDict) \
            else dict(items)
        if hasattr(state, '_metadata'):
            stripped._metadata = OrderedDict(
                (k[len('module.'):] if k.startswith('module.') else k, v)
                for k, v in state._metadata.items())
        checkpoint['state_dict'] = stripped
