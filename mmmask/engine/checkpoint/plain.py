"""Checkpoints of plain values, which ``torch.load(weights_only=True)``
accepts with no allow-list in any process (a stock mmdet / mmseg
``Pretrained`` init_cfg), and back: a HistoryBuffer becomes a marked dict on
save and an object again on load."""
from collections import OrderedDict
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer

#: Key that marks a dict standing for an object of another type.
TYPE_KEY = '__mmmask_type__'
#: Value of :data:`TYPE_KEY` for a :class:`HistoryBuffer`.
HISTORY_BUFFER_TYPE = 'mmengine.logging.HistoryBuffer'

# numpy dtypes that torch tensors hold exactly (others become lists).
_TENSOR_DTYPES = {np.dtype(t) for t in (
    'bool', 'uint8', 'int8', 'int16', 'int32', 'int64', 'float16', 'float32',
    'float64', 'complex64', 'complex128')}
# Leaf types a weights-only load accepts by default (exact types: an IntEnum
# is pickled as its own class).
_PLAIN_LEAVES = (type(None), bool, int, float, complex, str, bytes,
                 bytearray, torch.dtype, torch.device, torch.Size)


def _is_plain_leaf(obj: Any) -> bool:
    return type(obj) in _PLAIN_LEAVES or isinstance(obj, torch.Tensor)


def _copy_mapping(mapping: dict, items: List[Tuple[Any, Any]]) -> dict:
    """A dict or OrderedDict (as ``mapping``) of ``items``, keeping
    attributes such as a state_dict's ``_metadata``."""
    if not isinstance(mapping, OrderedDict):
        return dict(items)
    out = OrderedDict(items)
    out.__dict__.update(vars(mapping))
    return out


def _to_plain(obj: Any, unknown: List[str], where: str = '') -> Any:
    """``obj`` in plain values; ``obj`` itself when nothing under it
    changes. Values of other types are listed in ``unknown``."""
    if isinstance(obj, np.generic):  # before leaves: np.float64 is a float
        item = obj.item()  # np.longdouble stays itself: reported below
        if not isinstance(item, np.generic):
            return _to_plain(item, unknown, where)
    if _is_plain_leaf(obj):
        return obj
    if isinstance(obj, HistoryBuffer):
        log, count = obj.data
        return {TYPE_KEY: HISTORY_BUFFER_TYPE,
                'log_history': _to_plain(np.asarray(log), unknown, where),
                'count_history': _to_plain(np.asarray(count), unknown, where),
                'max_length': int(obj.max_length)}
    if isinstance(obj, np.ndarray):
        if obj.dtype in _TENSOR_DTYPES:
            return torch.from_numpy(np.ascontiguousarray(obj).copy())
        return _to_plain(obj.tolist(), unknown, where)
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            k = k.item() if isinstance(k, np.generic) else k
            if not (_is_plain_leaf(k) or type(k) is tuple):  # only reported
                unknown.append(f'{where or "<root>"} key {k!r}: '
                               f'{type(k).__module__}.{type(k).__qualname__}')
            items.append((k, _to_plain(v, unknown, f'{where}[{k!r}]')))
        if type(obj) in (dict, OrderedDict) and all(
                k is k0 and v is v0
                for (k, v), (k0, v0) in zip(items, obj.items())):
            return obj
        return _copy_mapping(obj, items)
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = [_to_plain(v, unknown, f'{where}[{i}]')
                 for i, v in enumerate(obj)]
        # namedtuple -> tuple, frozenset -> set (not allowed by default)
        base = list if isinstance(obj, list) else \
            tuple if isinstance(obj, tuple) else set
        if type(obj) is base and all(a is b for a, b in zip(items, obj)):
            return obj
        return base(items)
    unknown.append(f'{where or "<root>"}: {type(obj).__module__}.'
                   f'{type(obj).__qualname__}')
    return obj


def to_plain_checkpoint(checkpoint: dict) -> List[str]:
    """Make ``checkpoint`` loadable by ``torch.load(weights_only=True)``,
    in place at the top level (nested containers are copied, never mutated:
    they may be the runner's live state). A HistoryBuffer becomes ``{TYPE_KEY:
    HISTORY_BUFFER_TYPE, 'log_history': tensor, 'count_history': tensor,
    'max_length': int}``. Returns where values of other types remain
    (``"['meta']['x']: pkg.Cls"``), if any."""
    unknown: List[str] = []
    for key in list(checkpoint):
        checkpoint[key] = _to_plain(checkpoint[key], unknown, f'[{key!r}]')
    return unknown


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _restore(obj: Any) -> Any:
    if isinstance(obj, dict) and obj.get(TYPE_KEY) == HISTORY_BUFFER_TYPE:
        return HistoryBuffer(_numpy(obj['log_history']),
                             _numpy(obj['count_history']),
                             max_length=int(obj['max_length']))
    if isinstance(obj, dict):
        items = [(k, _restore(v)) for k, v in obj.items()]
        if all(v is v0 for (_, v), v0 in zip(items, obj.values())):
            return obj
        return _copy_mapping(obj, items)
    if isinstance(obj, (list, tuple)):
        items = [_restore(v) for v in obj]
        if all(a is b for a, b in zip(items, obj)):
            return obj
        return type(obj)(items) if type(obj) in (list, tuple) else items
    return obj


def restore_checkpoint_objects(checkpoint: dict) -> None:
    """Turn :func:`to_plain_checkpoint`'s marked dicts back into
    HistoryBuffer objects, in place at the top level."""
    for key in list(checkpoint):
        checkpoint[key] = _restore(checkpoint[key])


def strip_wrapper_prefix(checkpoint: dict) -> None:
    """``module.backbone.x`` -> ``backbone.x`` in ``checkpoint['state_dict']``
    when every key has the prefix (the FlexibleRunner's ``DDPStrategy`` saves
    the wrapper's), as downstream configs load ``prefix='backbone.'``."""
    state: Dict[str, Any] = checkpoint.get('state_dict')
    if not (isinstance(state, dict) and state and all(
            isinstance(k, str) and k.startswith('module.') for k in state)):
        return
    stripped = _copy_mapping(state, [(k[7:], v) for k, v in state.items()])
    if hasattr(state, '_metadata'):
        stripped._metadata = OrderedDict(
            (k[7:] if k.startswith('module.') else k, v)
            for k, v in state._metadata.items())
    checkpoint['state_dict'] = stripped
