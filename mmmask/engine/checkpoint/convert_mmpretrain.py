"""MoCo v2 / DenseCL weights between mmpretrain's layout (``MoCo`` /
``DenseCL``) and mmmask's (``MoCoV2`` / ``DenseCL``), both ways exactly. Both
use mmpretrain's ResNet, so backbone weights are shared as they are; the
rest is renamed, and two buffers change shape:

* ``backbone.*``, ``data_preprocessor.*``: the same
* ``neck.mlp.*`` -> ``neck.mlp.*`` (MoCo v2), ``neck.global_mlp.*`` (DenseCL)
* ``neck.mlp2.*`` (DenseCL) -> ``neck.dense_mlp.*``
* ``encoder_k.module.0.*`` / ``.1.*`` -> ``key_encoder.backbone.*`` /
  ``.neck.*``
* ``encoder_k.steps`` () -> ``key_encoder.num_updates`` ()
* ``queue`` (C, K), ``queue2`` -> ``queue.feats`` (K, C), ``dense_queue.feats``
* ``queue_ptr`` (1,), ``queue2_ptr`` -> ``queue.ptr`` (), ``dense_queue.ptr``
"""
import os.path as osp
import warnings
from collections import OrderedDict
from typing import Any, Dict, Optional

import torch
from mmengine.utils import mkdir_or_exist

from .io import load_checkpoint_file

METHODS = ('densecl', 'mocov2')
#: ``direction`` values of :func:`convert_checkpoint` (and their aliases).
DIRECTIONS = ('mmpretrain2mmmask', 'mmmask2mmpretrain')
_ALIASES = dict(to_mmmask=DIRECTIONS[0], forward=DIRECTIONS[0],
                to_mmpretrain=DIRECTIONS[1], reverse=DIRECTIONS[1],
                **{d: d for d in DIRECTIONS})
#: Entries that only resume the run that wrote them (the optimizer state is
#: keyed by parameter index, not by name).
TRAINING_STATE_KEYS = ('optimizer', 'message_hub', 'param_schedulers')


def momentum_from_mmpretrain(momentum: float) -> float:
    """mmpretrain's EMA ``momentum`` (1 - m, 0.001) <-> mmmask's m (0.999);
    the map is its own inverse (also :func:`momentum_to_mmpretrain`)."""
    return 1.0 - momentum


momentum_to_mmpretrain = momentum_from_mmpretrain


def _one(shape):
    def reshape(t: torch.Tensor) -> torch.Tensor:
        if t.numel() != 1:
            raise ValueError('expected a one-element tensor, got shape '
                             f'{tuple(t.shape)}')
        return t.reshape(shape)
    return reshape


def _transpose(t: torch.Tensor) -> torch.Tensor:
    if t.dim() != 2:
        raise ValueError(f'expected a 2-d queue, got shape {tuple(t.shape)}')
    return t.t().contiguous()


def _rules(method: str, to_mmmask: bool):
    """(prefix pairs, {exact key: (new key, transform)}) for one direction.
    Prefixes end with '.' (``neck.mlp.`` never matches ``neck.mlp2.*``); the
    first that matches wins."""
    if method not in METHODS:
        raise ValueError(f'method must be one of {METHODS}, got {method!r}')
    necks = [('mlp2.', 'dense_mlp.'), ('mlp.', 'global_mlp.')] \
        if method == 'densecl' else [('mlp.', 'mlp.')]
    prefixes = [('data_preprocessor.', 'data_preprocessor.'),
                ('backbone.', 'backbone.'),
                ('encoder_k.module.0.', 'key_encoder.backbone.')]
    for src, dst in necks:
        prefixes += [('neck.' + src, 'neck.' + dst),
                     ('encoder_k.module.1.' + src, 'key_encoder.neck.' + dst)]
    # (mmpretrain key, mmmask key, to mmmask, to mmpretrain)
    exact = [('encoder_k.steps', 'key_encoder.num_updates', _one(()),
              _one(())), ('queue', 'queue.feats', _transpose, _transpose),
             ('queue_ptr', 'queue.ptr', _one(()), _one(1))]
    if method == 'densecl':
        exact += [('queue2', 'dense_queue.feats', _transpose, _transpose),
                  ('queue2_ptr', 'dense_queue.ptr', _one(()), _one(1))]
    if to_mmmask:
        return prefixes, {a: (b, f) for a, b, f, _ in exact}
    return [(b, a) for a, b in prefixes], {b: (a, f) for a, b, _, f in exact}


def _map_key(key: str, exact: dict, prefixes):
    if key in exact:
        return exact[key]
    for src, dst in prefixes:
        if key.startswith(src):
            return dst + key[len(src):], None
    return None


def _convert(state_dict: Dict[str, Any], method: str, to_mmmask: bool,
             strict: bool) -> 'OrderedDict[str, Any]':
    prefixes, exact = _rules(method, to_mmmask)
    out, unknown = OrderedDict(), []
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
    if unknown:
        src, dst = ('mmpretrain', 'mmmask')[::1 if to_mmmask else -1]
        msg = (f'{len(unknown)} key(s) of the {src} state_dict have no {dst} '
               f'counterpart for method={method!r}: {", ".join(unknown)}')
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
    if metadata is not None:  # module versions; unmapped paths are dropped
        out._metadata = OrderedDict()
        for path, value in metadata.items():
            mapped = _map_key(path + '.', {}, prefixes) if path else ('.', )
            if mapped is not None:
                out._metadata[mapped[0][:-1]] = value
    return out


def mmpretrain_to_mmmask(state_dict: Dict[str, Any], method: str = 'densecl',
                         strict: bool = True) -> 'OrderedDict[str, Any]':
    """An mmpretrain ``MoCo`` (``'mocov2'``) / ``DenseCL`` state_dict in
    mmmask's layout; ``strict``: a KeyError names every key no rule maps
    (else they are kept unchanged, with a warning)."""
    return _convert(state_dict, method, True, strict)


def mmmask_to_mmpretrain(state_dict: Dict[str, Any], method: str = 'densecl',
                         strict: bool = True) -> 'OrderedDict[str, Any]':
    """Inverse of :func:`mmpretrain_to_mmmask`."""
    return _convert(state_dict, method, False, strict)


def detect_method(state_dict: Dict[str, Any]) -> str:
    """``'densecl'`` when a key of either layout has a second queue or a
    dense neck branch, else ``'mocov2'``."""
    for key in state_dict:
        parts = key.split('.')
        if parts[0] in ('queue2', 'queue2_ptr', 'dense_queue') or any(
                p in ('mlp2', 'dense_mlp', 'global_mlp') for p in parts):
            return 'densecl'
    return 'mocov2'


def _direction(direction: str) -> str:
    if direction not in _ALIASES:
        raise ValueError(f'direction must be one of {DIRECTIONS}, got '
                         f'{direction!r}')
    return _ALIASES[direction]


def convert_state_dict(state_dict: Dict[str, Any], direction: str,
                       method: Optional[str] = None,
                       strict: bool = True) -> 'OrderedDict[str, Any]':
    """Dispatch on ``direction``; ``method=None``: :func:`detect_method`."""
    to_mmmask = _direction(direction) == DIRECTIONS[0]
    return _convert(state_dict, method or detect_method(state_dict),
                    to_mmmask, strict)


def convert_checkpoint(src_path: str, dst_path: str,
                       direction: str = 'mmpretrain2mmmask',
                       method: Optional[str] = None, strict: bool = True,
                       keep_training_state: bool = False) -> Dict[str, Any]:
    """Convert the checkpoint file ``src_path`` (a bare state dict, or an
    mmengine checkpoint: ``state_dict`` and ``ema_state_dict`` converted,
    :data:`TRAINING_STATE_KEYS` dropped unless ``keep_training_state``) and
    save it to ``dst_path``. Returns the converted checkpoint."""
    direction = _direction(direction)
    ckpt = load_checkpoint_file(src_path)
    if not isinstance(ckpt, dict):
        raise TypeError(f'{src_path}: expected a checkpoint dict, got '
                        f'{type(ckpt).__name__}')
    if 'state_dict' not in ckpt:
        if not (ckpt and all(isinstance(v, torch.Tensor)
                             for v in ckpt.values())):
            raise KeyError(f'{src_path} has no "state_dict" entry and is not '
                           f'a state_dict itself (keys: {list(ckpt)[:10]})')
        out = convert_state_dict(ckpt, direction, method, strict)
    else:
        method = method or detect_method(ckpt['state_dict'])
        out = {k: v for k, v in ckpt.items()
               if keep_training_state or k not in TRAINING_STATE_KEYS}
        out['state_dict'] = convert_state_dict(out['state_dict'], direction,
                                               method, strict)
        ema = out.get('ema_state_dict')
        if isinstance(ema, dict):  # EMAHook's {'steps', 'module.<key>'}
            conv = convert_state_dict(OrderedDict(
                (k[7:], v) for k, v in ema.items() if k.startswith('module.')),
                direction, method, strict)
            out['ema_state_dict'] = OrderedDict(
                [(k, v) for k, v in ema.items() if not k.startswith('module.')]
                + [('module.' + k, v) for k, v in conv.items()])
        if keep_training_state and any(k in ckpt for k in TRAINING_STATE_KEYS):
            warnings.warn('kept the optimizer/scheduler state unchanged: it '
                          'refers to parameters by index, which only matches '
                          'if both models list their parameters in the same '
                          'order')
        if isinstance(out.get('meta'), dict):
            out['meta'] = dict(out['meta'], mmmask_conversion=dict(
                direction=direction, method=method))
    mkdir_or_exist(osp.dirname(osp.abspath(dst_path)))
    torch.save(out, dst_path)
    return out
