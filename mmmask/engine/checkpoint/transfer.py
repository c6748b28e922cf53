"""Which tensors of a checkpoint a module receives, before it loads them
(mmengine's ``strict=False`` load of another architecture only warns):
:class:`LoadReport` names them, :class:`PretrainedMismatchError` stops a
partial load. Only torch and :mod:`mmmask.errors` are imported."""
from functools import partial
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
from torch import nn

from mmmask.errors import PretrainedMismatchError

#: BatchNorm counters: present or not depending on the torch that wrote the
#: file; never a reason to fail.
_IGNORED_SUFFIXES = ('num_batches_tracked', )
_torch_load = partial(torch.load, map_location='cpu', weights_only=True)


def _short(items: List[str], n: int, sep: str = ', ') -> str:
    return sep.join(items[:n]) + (f'{sep}... {len(items) - n} more'
                                  if len(items) > n else '')


class LoadReport:
    """What a checkpoint gives one module (``name`` in the model) from
    ``checkpoint`` under ``prefix``: key lists ``loaded``, ``missing``,
    ``unexpected``, ``mismatched`` (``(key, checkpoint shape, module
    shape)``), ``resized`` and ``new`` (see :func:`vit_transfer_rules`)."""

    def __init__(self, name: str, checkpoint: str, prefix: str,
                 loaded: List[str], missing: List[str], unexpected: List[str],
                 mismatched: List[Tuple[str, tuple, tuple]],
                 resized: Optional[List[str]] = None,
                 new: Optional[List[str]] = None) -> None:
        self.name, self.checkpoint, self.prefix = name, checkpoint, prefix
        self.loaded, self.missing = loaded, missing
        self.unexpected, self.mismatched = unexpected, mismatched
        self.resized, self.new = list(resized or []), list(new or [])

    @property
    def total(self) -> int:
        """Number of tensors the module has (ignored counters excluded)."""
        return len(self.loaded) + len(self.missing) + len(self.mismatched)

    @property
    def ok(self) -> bool:
        return bool(self.loaded) and not self.missing and not self.mismatched

    def _parts(self, max_keys: int, details: bool) -> List[str]:
        """``'title (n): first keys'`` per non-empty list; shape mismatches
        first, or with ``details`` last, after the resized and new keys."""
        named = [('missing', self.missing), ('unexpected', self.unexpected)]
        if details:
            named += [('resized on load', self.resized),
                      ('new, not pretrained', self.new)]
        parts = [f'{title} ({len(keys)}): {_short(keys, max_keys)}'
                 for title, keys in named if keys]
        if self.mismatched:
            shapes = [f'{k} {tuple(a)} in checkpoint vs {tuple(b)} in model'
                      for k, a, b in self.mismatched]
            parts.insert(len(parts) if details else 0,
                         f'shape mismatch ({len(shapes)}): '
                         + _short(shapes, max_keys, '; '))
        return parts

    def problems(self, max_keys: int = 3) -> str:
        """The mismatched, missing and unexpected keys in one line."""
        return '; '.join(self._parts(max_keys, details=False))

    def summary(self, max_keys: int = 8) -> str:
        header = (f'{self.name}: {len(self.loaded)}/{self.total} tensors '
                  f'loaded from {self.checkpoint} (prefix {self.prefix!r})')
        return '\n  '.join([header] + self._parts(max_keys, details=True))

    def __repr__(self) -> str:
        return f'LoadReport({self.summary()})'


def checkpoint_state_dict(checkpoint: Any) -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint: ``checkpoint['state_dict']``,
    ``checkpoint['model']`` or the dict itself (a bare state dict)."""
    if not isinstance(checkpoint, dict):
        raise PretrainedMismatchError(
            f'a checkpoint must be a dict, got {type(checkpoint).__name__}')
    for key in ('state_dict', 'model'):
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def vit_transfer_rules(module: nn.Module) -> Tuple[List[str], List[str]]:
    """``(resizable, new)`` keys of a ViT-like module, which are not
    mismatches: a ``pos_embed`` of another token count, which mmpretrain's
    ``VisionTransformer`` resizes on load (``_prepare_pos_embed``), and the
    ``ln2.*`` norm after pooling that only a fine-tuning ViT has
    (``out_type='avg_featmap'``)."""
    resizable, new = [], []
    if hasattr(module, '_prepare_pos_embed') and \
            getattr(module, 'pos_embed', None) is not None:
        resizable.append('pos_embed')
    if getattr(module, 'out_type', None) == 'avg_featmap' and \
            isinstance(getattr(module, 'ln2', None), nn.Module):
        new.extend('ln2.' + k for k in module.ln2.state_dict())
    return resizable, new


def _under_prefix(state: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    """The entries of ``state`` under ``prefix``, keyed without it
    (``module.`` of wrapped saves stripped first, as mmengine does)."""
    unwrapped = ((k[7:] if k.startswith('module.') else k, v)
                 for k, v in state.items())
    return {k[len(prefix):]: v for k, v in unwrapped if k.startswith(prefix)}


def check_module_against_checkpoint(
        module: nn.Module, checkpoint_state: Dict[str, torch.Tensor],
        prefix: str = 'backbone.', name: str = 'module',
        checkpoint: str = '<state dict>', strict: bool = True) -> LoadReport:
    """Compare ``module``'s state dict with the checkpoint's tensors under
    ``prefix``; with ``strict`` raise :class:`PretrainedMismatchError` unless
    every tensor of the module is filled (:func:`vit_transfer_rules`)."""
    resizable, new = map(set, vit_transfer_rules(module))
    own = _under_prefix(checkpoint_state, prefix)
    module_state = module.state_dict()
    loaded, missing, mismatched, resized, fresh = [], [], [], [], []
    for key, value in module_state.items():
        if key.endswith(_IGNORED_SUFFIXES):
            continue
        if key not in own:
            (fresh if key in new else missing).append(key)
            continue
        a, b = tuple(own[key].shape), tuple(value.shape)
        if a == b:
            loaded.append(key)
        elif key in resizable and len(a) == len(b) == 3 and \
                a[0] == b[0] and a[2] == b[2]:  # another token count
            loaded.append(key)
            resized.append(key)
        else:
            mismatched.append((key, a, b))
    unexpected = [k for k in own if k not in module_state
                  and not k.endswith(_IGNORED_SUFFIXES)]
    report = LoadReport(name, checkpoint, prefix, loaded, missing,
                        unexpected, mismatched, resized, fresh)
    if not strict or report.ok:
        return report
    if not report.loaded:
        heads = sorted({k.split('.')[0] for k in checkpoint_state})
        why = (f'no tensor of {name} is in the checkpoint under the prefix '
               f'{prefix!r} (its top-level keys: {_short(heads, 10)})')
    else:
        why = ('the checkpoint does not fit the architecture: the module '
               'would be left partly at its random init')
    raise PretrainedMismatchError(
        f'{why}.\n{report.summary()}\nCheck the model config (depth, deep '
        "stem: mmmask's ResNet has the plain stem conv1/bn1, mmseg's "
        'ResNetV1c a deep one) and the prefix.')


def load_pretrained(module: nn.Module, path: str, prefix: str = 'backbone.',
                    name: str = 'module', strict: bool = True,
                    loader: Optional[Callable[[str], Any]] = None,
                    logger: Optional[Callable[[str], None]] = print
                    ) -> LoadReport:
    """Load what fits of ``path`` under ``prefix`` into ``module`` and log the
    report (``logger=None``: silent); ``strict``: as
    :func:`check_module_against_checkpoint`. ``loader``: default a plain
    weights-only load (:func:`~.io.load_checkpoint_file` for mmengine's)."""
    state = checkpoint_state_dict((loader or _torch_load)(path))
    report = check_module_against_checkpoint(module, state, prefix, name,
                                             str(path), strict)
    take = set(report.loaded) | {k for k in module.state_dict()
                                 if k.endswith(_IGNORED_SUFFIXES)}
    own = _under_prefix(state, prefix)
    module.load_state_dict({k: own[k] for k in take if k in own}, strict=False)
    if logger is not None:
        logger(report.summary())
    return report


def check_pretrained_inits(model: nn.Module,
                           loader: Optional[Callable[[str], Any]] = None,
                           strict: bool = True) -> List[LoadReport]:
    """A report per local ``Pretrained`` init_cfg of ``model``'s submodules
    before ``init_weights`` runs (each file read once); with ``strict``, the
    first that would not fill its module raises."""
    cache: Dict[str, Dict[str, torch.Tensor]] = {}
    reports = []
    for name, sub, cfg in _pretrained_init_cfgs(model):
        path = cfg.get('checkpoint')
        if not isinstance(path, str) or '://' in path:
            continue
        if path not in cache:
            cache[path] = checkpoint_state_dict((loader or _torch_load)(path))
        reports.append(check_module_against_checkpoint(
            sub, cache[path], cfg.get('prefix') or '', name, path, strict))
    return reports


def _pretrained_init_cfgs(model: nn.Module):
    """``(name, submodule, cfg)`` per ``Pretrained`` init_cfg of a module."""
    for name, sub in model.named_modules():
        cfgs = getattr(sub, 'init_cfg', None)
        for cfg in (cfgs if isinstance(cfgs, (list, tuple)) else [cfgs]):
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
                yield name or '<model>', sub, cfg
