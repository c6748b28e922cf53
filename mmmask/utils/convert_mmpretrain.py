"""Convert MoCo v2 / DenseCL weights between mmpretrain's and mmmask's layout.

Both packages use mmpretrain's ResNet, so backbone weights are shared as is;
the rest is renamed (and two buffers change shape):

==============================  =========================================
mmpretrain (``MoCo``/``DenseCL``)  mmmask (``MoCoV2``/``DenseCL``)
==============================  =========================================
``backbone.*``                  ``backbone.*``
``neck.mlp.*``                  ``neck.mlp.*`` (MoCo v2),
                                ``neck.global_mlp.*`` (DenseCL)
``neck.mlp2.*`` (DenseCL)       ``neck.dense_mlp.*``
``encoder_k.module.0.*``        ``key_encoder.backbone.*``
``encoder_k.module.1.*``        ``key_encoder.neck.*`` (same neck renames)
``encoder_k.steps`` ()          ``key_encoder.num_updates`` ()
``queue`` (C, K)                ``queue.feats`` (K, C), transposed
``queue_ptr`` (1,)              ``queue.ptr`` ()
``queue2`` (C, K) (DenseCL)     ``dense_queue.feats`` (K, C)
``queue2_ptr`` (1,) (DenseCL)   ``dense_queue.ptr`` ()
``data_preprocessor.*``         ``data_preprocessor.*``
==============================  =========================================

The two directions are exact inverses. Config values differ too: mmpretrain's
``momentum=0.001`` is ``1 - m``, mmmask's ``momentum=0.999`` is the paper's m
(:func:`momentum_from_mmpretrain`, :func:`momentum_to_mmpretrain`).
"""
import os
import os.path as osp
import warnings
from collections import OrderedDict
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

__all__ = [
    'METHODS', 'DIRECTIONS', 'momentum_from_mmpretrain',
    'momentum_to_mmpretrain', 'detect_method', 'mmpretrain_to_mmmask',
    'mmmask_to_mmpretrain', 'convert_state_dict', 'convert_checkpoint'
]

METHODS = ('densecl', 'mocov2')
#: ``direction`` values of :func:`convert_checkpoint`.
DIRECTIONS = ('mmpretrain2mmmask', 'mmmask2mmpretrain')
_DIRECTION_ALIASES = {
    'mmpretrain2mmmask': 'mmpretrain2mmmask',
    'to_mmmask': 'mmpretrain2mmmask',
    'forward': 'mmpretrain2mmmask',
    'mmmask2mmpretrain': 'mmmask2mmpretrain',
    'to_mmpretrain': 'mmmask2mmpretrain',
    'reverse': 'mmmask2mmpretrain',
}
# Checkpoint entries that only make sense for resuming the run that wrote
# them (the optimizer state is keyed by parameter index, not by name).
TRAINING_STATE_KEYS = ('optimizer', 'message_hub', 'param_schedulers')


def momentum_from_mmpretrain(momentum: float) -> float:
    """mmpretrain's EMA ``momentum`` (1 - m, e.g. 0.001) -> mmmask's m (0.999)."""
    return 1.0 - momentum


def momentum_to_mmpretrain(momentum: float) -> float:
    """mmmask's m (e.g. 0.999) -> mmpretrain's EMA ``momentum`` (1 - m)."""
    return 1.0 - momentum


# --------------------------------------------------------------------------
# Key rules. Prefix rules map every key that starts with the left prefix; the
# first matching rule wins, so the more specific prefixes come first. A rule
# ends with '.', hence 'neck.mlp.' never matches 'neck.mlp2.*'.
# --------------------------------------------------------------------------
def _neck_renames(method: str) -> List[Tuple[str, str]]:
    if method == 'densecl':
        return [('mlp2.', 'dense_mlp.'), ('mlp.', 'global_mlp.')]
    return [('mlp.', 'mlp.')]


def _prefix_rules(method: str) -> List[Tuple[str, str]]:
    """(mmpretrain prefix, mmmask prefix) pairs."""
    rules = [('data_preprocessor.', 'data_preprocessor.'),
             ('backbone.', 'backbone.'),
             ('encoder_k.module.0.', 'key_encoder.backbone.')]
    for src, dst in _neck_renames(method):
        rules.append(('neck.' + src, 'neck.' + dst))
        rules.append(('encoder_k.module.1.' + src, 'key_encoder.neck.' + dst))
    return rules


def _as_scalar(t: torch.Tensor) -> torch.Tensor:
    if t.numel() != 1:
        raise ValueError(f'expected a one-element tensor, got shape '
                         f'{tuple(t.shape)}')
    return t.reshape(())


def _as_vector1(t: torch.Tensor) -> torch.Tensor:
    if t.numel() != 1:
        raise ValueError(f'expected a one-element tensor, got shape '
                         f'{tuple(t.shape)}')
    return t.reshape(1)


def _transpose(t: torch.Tensor) -> torch.Tensor:
    if t.dim() != 2:
        raise ValueError(f'expected a 2-d queue, got shape {tuple(t.shape)}')
    return t.t().contiguous()


def _exact_rules(method: str, to_mmmask: bool
                 ) -> Dict[str, Tuple[str, Callable]]:
    """Whole-key rules: {source key: (target key, tensor transform)}."""
    pairs = [('encoder_k.steps', 'key_encoder.num_updates', _as_scalar,
              _as_scalar),
             ('queue', 'queue.feats', _transpose, _transpose),
             ('queue_ptr', 'queue.ptr', _as_scalar, _as_vector1)]
    if method == 'densecl':
        pairs += [('queue2', 'dense_queue.feats', _transpose, _transpose),
                  ('queue2_ptr', 'dense_queue.ptr', _as_scalar, _as_vector1)]
    if to_mmmask:
        return {a: (b, fwd) for a, b, fwd, _ in pairs}
    return {b: (a, bwd) for a, b, _, bwd in pairs}


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    return method


def _map_key(key: str, exact: dict, prefixes: List[Tuple[str, str]]):
    """(new key, transform) or None when no rule matches."""
    if key in exact:
        return exact[key]
    for src, dst in prefixes:
        if key.startswith(src):
            return dst + key[len(src):], None
    return None


def _map_metadata(metadata: dict, prefixes: List[Tuple[str, str]]) -> dict:
    """Carry torch's per-module ``_metadata`` (module versions) across.

    Module paths are mapped by the key prefix rules; the root entry is kept;
    paths with no counterpart (e.g. ``encoder_k``) are dropped, which only
    means "version unknown" to ``load_state_dict``.
    """
    out = OrderedDict()
    for path, value in metadata.items():
        if path == '':
            out[path] = value
            continue
        mapped = _map_key(path + '.', {}, prefixes)
        if mapped is not None:
            out[mapped[0][:-1]] = value
    return out


def _convert(state_dict: Dict[str, Any], method: str, to_mmmask: bool,
             strict: bool) -> 'OrderedDict[str, Any]':
    method = _check_method(method)
    prefixes = _prefix_rules(method)
    if not to_mmmask:
        prefixes = [(dst, src) for src, dst in prefixes]
    exact = _exact_rules(method, to_mmmask)

    out = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        mapped = _map_key(key, exact, prefixes)
        if mapped is None:
            unknown.append(key)
            continue
        new_key, transform = mapped
        if transform is not None and isinstance(value, torch.Tensor):
            try:
                value = transform(value)
            except ValueError as e:
                raise ValueError(f'{key!r}: {e}') from None
        if new_key in out:
            raise KeyError(f'two keys map to {new_key!r}; the state_dict '
                           'mixes both layouts')
        out[new_key] = value

    src_name, dst_name = (('mmpretrain', 'mmmask') if to_mmmask else
                          ('mmmask', 'mmpretrain'))
    if unknown:
        msg = (f'{len(unknown)} key(s) of the {src_name} state_dict have no '
               f'{dst_name} counterpart for method={method!r}: '
               f'{", ".join(unknown)}')
        if strict:
            raise KeyError(msg + ' (strict=False / --no-strict keeps them '
                           'unchanged; or check the method and the '
                           'conversion direction)')
        warnings.warn(msg + '; kept unchanged')
        for key in unknown:
            if key in out:
                raise KeyError(f'the unknown key {key!r} collides with a '
                               'converted key')
            out[key] = state_dict[key]

    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        out._metadata = _map_metadata(metadata, prefixes)
    return out


def mmpretrain_to_mmmask(state_dict: Dict[str, Any], method: str = 'densecl',
                         strict: bool = True) -> 'OrderedDict[str, Any]':
    """An mmpretrain ``MoCo`` (``method='mocov2'``) or ``DenseCL`` state_dict
    in mmmask's ``MoCoV2`` / ``DenseCL`` layout.

    Args:
        state_dict: the model's ``state_dict()`` (tensors are not copied
            except the transposed queues and reshaped scalars).
        method: ``'densecl'`` or ``'mocov2'``.
        strict: raise a KeyError naming every key no rule maps; with
            ``strict=False`` they are kept unchanged (with a warning).
    """
    return _convert(state_dict, method, True, strict)


def mmmask_to_mmpretrain(state_dict: Dict[str, Any], method: str = 'densecl',
                         strict: bool = True) -> 'OrderedDict[str, Any]':
    """Inverse of :func:`mmpretrain_to_mmmask`."""
    return _convert(state_dict, method, False, strict)


def detect_method(state_dict: Dict[str, Any]) -> str:
    """``'densecl'`` or ``'mocov2'`` from the keys of either layout: a second
    queue or a dense neck branch means DenseCL."""
    for key in state_dict:
        parts = key.split('.')
        if parts[0] in ('queue2', 'queue2_ptr', 'dense_queue') or any(
                p in ('mlp2', 'dense_mlp', 'global_mlp') for p in parts):
            return 'densecl'
    return 'mocov2'


def convert_state_dict(state_dict: Dict[str, Any], direction: str,
                       method: Optional[str] = None,
                       strict: bool = True) -> 'OrderedDict[str, Any]':
    """Dispatch on ``direction`` (see :data:`DIRECTIONS`); ``method=None``
    detects it with :func:`detect_method`."""
    direction = _normalise_direction(direction)
    method = method or detect_method(state_dict)
    fn = (mmpretrain_to_mmmask
          if direction == 'mmpretrain2mmmask' else mmmask_to_mmpretrain)
    return fn(state_dict, method, strict)


def _normalise_direction(direction: str) -> str:
    try:
        return _DIRECTION_ALIASES[direction]
    except KeyError:
        raise ValueError(f'direction must be one of {DIRECTIONS}, got '
                         f'{direction!r}') from None


# --------------------------------------------------------------------------
# Checkpoint files
# --------------------------------------------------------------------------
def _load_file(path: str):
    """Weights-only load; mmmask's loader also accepts the Python objects
    (HistoryBuffer, numpy values) that mmengine puts in training
    checkpoints, and nothing else."""
    try:
        from mmmask.engine.checkpoint import load_checkpoint_file
    except ImportError:  # mmmask.engine unavailable: plain weights-only load
        return torch.load(path, map_location='cpu', weights_only=True)
    return load_checkpoint_file(path, map_location='cpu')


def _is_state_dict(obj: Any) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(
        isinstance(v, torch.Tensor) for v in obj.values())


def convert_checkpoint(src_path: str, dst_path: str,
                       direction: str = 'mmpretrain2mmmask',
                       method: Optional[str] = None, strict: bool = True,
                       keep_training_state: bool = False) -> Dict[str, Any]:
    """Convert a checkpoint file and save it to ``dst_path``.

    Accepts an mmengine checkpoint (a dict with ``'state_dict'``, converted;
    ``'ema_state_dict'`` of mmengine's EMAHook is converted too) or a bare
    state_dict. ``'meta'`` and any other entries are kept, except the
    training state (:data:`TRAINING_STATE_KEYS`: optimizer, message_hub,
    param_schedulers), which is dropped unless ``keep_training_state``.

    Args:
        src_path, dst_path: files (``dst_path``'s folder is created).
        direction: ``'mmpretrain2mmmask'`` (alias ``'to_mmmask'``) or
            ``'mmmask2mmpretrain'`` (alias ``'to_mmpretrain'``).
        method: ``'densecl'`` | ``'mocov2'``; None detects it from the keys.
        strict: see :func:`mmpretrain_to_mmmask`.
        keep_training_state: keep optimizer / message_hub / param_schedulers.
    Returns:
        the converted checkpoint (also written to ``dst_path``).
    """
    direction = _normalise_direction(direction)
    ckpt = _load_file(src_path)
    if not isinstance(ckpt, dict):
        raise TypeError(f'{src_path}: expected a checkpoint dict, got '
                        f'{type(ckpt).__name__}')
    if 'state_dict' not in ckpt:
        if not _is_state_dict(ckpt):
            raise KeyError(f'{src_path} has no "state_dict" entry and is not '
                           f'a state_dict itself (keys: {list(ckpt)[:10]})')
        out = convert_state_dict(ckpt, direction, method, strict)
    else:
        state_dict = ckpt['state_dict']
        method = method or detect_method(state_dict)
        out = {}
        for key, value in ckpt.items():
            if key in TRAINING_STATE_KEYS and not keep_training_state:
                continue
            if key == 'state_dict':
                value = convert_state_dict(value, direction, method, strict)
            elif key == 'ema_state_dict' and isinstance(value, dict):
                value = _convert_ema_state_dict(value, direction, method,
                                                strict)
            out[key] = value
        if keep_training_state and any(k in ckpt for k in TRAINING_STATE_KEYS):
            warnings.warn('kept the optimizer/scheduler state unchanged: it '
                          'refers to parameters by index, which only matches '
                          'if both models list their parameters in the same '
                          'order')
        meta = out.get('meta')
        if isinstance(meta, dict):
            meta = dict(meta)
            meta['mmmask_conversion'] = dict(direction=direction,
                                             method=method)
            out['meta'] = meta
    os.makedirs(osp.dirname(osp.abspath(dst_path)), exist_ok=True)
    torch.save(out, dst_path)
    return out


def _convert_ema_state_dict(ema: Dict[str, Any], direction: str, method: str,
                            strict: bool) -> Dict[str, Any]:
    """mmengine's EMAHook stores ``{'steps': ..., 'module.<model key>': ...}``."""
    inner = OrderedDict((k[len('module.'):], v) for k, v in ema.items()
                        if k.startswith('module.'))
    converted = convert_state_dict(inner, direction, method, strict)
    out = OrderedDict((k, v) for k, v in ema.items()
                      if not k.startswith('module.'))
    out.update(('module.' + k, v) for k, v in converted.items())
    return out
