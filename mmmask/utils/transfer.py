"""Which tensors of a pretrained checkpoint a module receives, and a clear
error when it receives the wrong ones.

mmengine's ``PretrainedInit`` loads with ``strict=False``: a checkpoint of
another architecture (a ResNet-18 into a ResNet-50, a plain-stem ResNet into
a deep-stem ``ResNetV1c``) only logs a warning and leaves the module partly
or wholly at its random init. The functions here compare a checkpoint with
a module *before* (or instead of) loading it and report

* how many of the module's tensors the checkpoint fills (``loaded``),
* the module's tensors it lacks (``missing``),
* its tensors under the prefix that the module has no place for
  (``unexpected``; normal for a part that takes a slice, e.g. the C4 shared
  head takes ``layer4`` only),
* tensors whose shapes differ (``mismatched``),

and raise :class:`PretrainedMismatchError` when the module would not be
fully initialised from the checkpoint.

Two ViT cases are not mismatches (see :func:`vit_transfer_rules`): a
``pos_embed`` of another token count with the same width (the module
resizes it when it loads, as mmpretrain's ``VisionTransformer`` does:
``resized``), and the norm after global pooling that a fine-tuning ViT adds
(mmpretrain's ``ln2`` with ``out_type='avg_featmap'``, MAE's fc-norm),
which no pre-trained encoder has (``new``).

This module imports only torch, so the downstream launchers
(``tools/benchmarks/*/train.py``), which never import the mmmask package,
load it by its file path.
"""
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import torch
from torch import nn

__all__ = [
    'PretrainedMismatchError', 'LoadReport', 'checkpoint_state_dict',
    'compare_state_dicts', 'vit_transfer_rules',
    'check_module_against_checkpoint',
    'load_pretrained', 'pretrained_init_cfgs', 'check_pretrained_inits'
]

#: BatchNorm counters: present or not depending on the torch version that
#: wrote the file; never a reason to fail.
_IGNORED_SUFFIXES = ('num_batches_tracked', )


class PretrainedMismatchError(RuntimeError):
    """A checkpoint does not fit the module it should initialise."""


class LoadReport:
    """What a checkpoint gives one module.

    Attributes:
        name (str): the module's name in the model ('backbone', ...).
        checkpoint (str): the file.
        prefix (str): the checkpoint prefix that was stripped.
        loaded (list[str]): module keys filled from the checkpoint.
        missing (list[str]): module keys the checkpoint lacks.
        unexpected (list[str]): checkpoint keys (prefix stripped) that the
            module lacks.
        mismatched (list[tuple]): ``(key, checkpoint shape, module shape)``.
        resized (list[str]): loaded keys whose shape the module adapts on
            load (a ViT's ``pos_embed`` at another input size).
        new (list[str]): module keys of layers that only fine-tuning has
            (not counted in ``total``).
    """

    def __init__(self, name: str, checkpoint: str, prefix: str,
                 loaded: List[str], missing: List[str],
                 unexpected: List[str],
                 mismatched: List[Tuple[str, tuple, tuple]],
                 resized: Optional[List[str]] = None,
                 new: Optional[List[str]] = None) -> None:
        self.name = name
        self.checkpoint = checkpoint
        self.prefix = prefix
        self.loaded = loaded
        self.missing = missing
        self.unexpected = unexpected
        self.mismatched = mismatched
        self.resized = list(resized or [])
        self.new = list(new or [])

    @property
    def total(self) -> int:
        """Number of tensors the module has (ignored counters excluded)."""
        return len(self.loaded) + len(self.missing) + len(self.mismatched)

    @property
    def ok(self) -> bool:
        return bool(self.loaded) and not self.missing and not self.mismatched

    def summary(self, max_keys: int = 8) -> str:
        lines = [f'{self.name}: {len(self.loaded)}/{self.total} tensors '
                 f'loaded from {self.checkpoint} (prefix {self.prefix!r})']
        for title, keys in (('missing', self.missing),
                            ('unexpected', self.unexpected),
                            ('resized on load', self.resized),
                            ('new, not pretrained', self.new)):
            if keys:
                lines.append(f'  {title} ({len(keys)}): '
                             f'{_short_list(keys, max_keys)}')
        if self.mismatched:
            shown = [f'{k} {tuple(a)} in checkpoint vs {tuple(b)} in model'
                     for k, a, b in self.mismatched[:max_keys]]
            more = len(self.mismatched) - len(shown)
            lines.append(f'  shape mismatch ({len(self.mismatched)}): '
                         + '; '.join(shown)
                         + (f'; ... {more} more' if more > 0 else ''))
        return '\n'.join(lines)

    def __repr__(self) -> str:
        return f'LoadReport({self.summary()})'


def _short_list(keys: List[str], n: int) -> str:
    shown = ', '.join(keys[:n])
    return shown + (f', ... {len(keys) - n} more' if len(keys) > n else '')


def _ignored(key: str) -> bool:
    return key.endswith(_IGNORED_SUFFIXES)


def checkpoint_state_dict(checkpoint: Any) -> Dict[str, torch.Tensor]:
    """The weights of a loaded checkpoint: ``checkpoint['state_dict']``,
    ``checkpoint['model']`` or the dict itself (a bare state dict)."""
    if not isinstance(checkpoint, dict):
        raise PretrainedMismatchError(
            f'a checkpoint must be a dict, got {type(checkpoint).__name__}')
    for key in ('state_dict', 'model'):
        inner = checkpoint.get(key)
        if isinstance(inner, dict):
            return inner
    return checkpoint


def vit_transfer_rules(module: nn.Module) -> Tuple[List[str], List[str]]:
    """``(resizable, new)`` key lists of a ViT-like module: ``pos_embed``
    when the module resizes a checkpoint's on load (mmpretrain's
    ``VisionTransformer`` and subclasses: ``_prepare_pos_embed``), and the
    ``ln2.*`` norm after pooling of ``out_type='avg_featmap'``. Empty for
    anything else."""
    resizable, new = [], []
    if hasattr(module, '_prepare_pos_embed') and \
            getattr(module, 'pos_embed', None) is not None:
        resizable.append('pos_embed')
    if getattr(module, 'out_type', None) == 'avg_featmap' and \
            isinstance(getattr(module, 'ln2', None), nn.Module):
        new.extend('ln2.' + k for k in module.ln2.state_dict())
    return resizable, new


def compare_state_dicts(module_state: Dict[str, torch.Tensor],
                        checkpoint_state: Dict[str, torch.Tensor],
                        prefix: str = 'backbone.', name: str = 'module',
                        checkpoint: str = '<state dict>',
                        resizable: Iterable[str] = (),
                        new: Iterable[str] = ()) -> LoadReport:
    """Compare a module's state dict with the part of a checkpoint's state
    dict under ``prefix`` (``module.`` of DDP-wrapped saves is stripped
    first, as mmengine's loader does).

    ``resizable``: keys whose shape may differ if only the second dimension
    (the token count) does; ``new``: keys the checkpoint is not expected to
    have (see :func:`vit_transfer_rules`)."""
    resizable, new = set(resizable), set(new)
    stripped = {}
    for key, value in checkpoint_state.items():
        if key.startswith('module.'):
            key = key[len('module.'):]
        if key.startswith(prefix):
            stripped[key[len(prefix):]] = value
    loaded, missing, mismatched, resized, fresh = [], [], [], [], []
    for key, value in module_state.items():
        if _ignored(key):
            continue
        if key not in stripped:
            (fresh if key in new else missing).append(key)
        elif tuple(stripped[key].shape) != tuple(value.shape):
            a, b = tuple(stripped[key].shape), tuple(value.shape)
            if key in resizable and len(a) == len(b) == 3 and \
                    a[0] == b[0] and a[2] == b[2]:
                loaded.append(key)
                resized.append(key)
            else:
                mismatched.append((key, a, b))
        else:
            loaded.append(key)
    unexpected = [k for k in stripped
                  if k not in module_state and not _ignored(k)]
    return LoadReport(name, checkpoint, prefix, loaded, missing, unexpected,
                      mismatched, resized, fresh)


def _raise_unless_ok(report: LoadReport,
                     checkpoint_state: Dict[str, torch.Tensor]) -> None:
    if report.ok:
        return
    if not report.loaded:
        heads = sorted({k.split('.')[0] for k in checkpoint_state})
        why = (f'no tensor of {report.name} is in the checkpoint under the '
               f'prefix {report.prefix!r} (its top-level keys: '
               f'{_short_list(heads, 10)})')
    else:
        why = ('the checkpoint does not fit the architecture: the module '
               'would be left partly at its random init')
    raise PretrainedMismatchError(
        f'{why}.\n{report.summary()}\nCheck the model config (depth, '
        "deep stem: mmmask's ResNet has the plain stem conv1/bn1, mmseg's "
        "ResNetV1c a deep one) and the prefix.")


def check_module_against_checkpoint(
        module: nn.Module, checkpoint_state: Dict[str, torch.Tensor],
        prefix: str = 'backbone.', name: str = 'module',
        checkpoint: str = '<state dict>', strict: bool = True) -> LoadReport:
    """:func:`compare_state_dicts` for ``module``; with ``strict`` raise
    :class:`PretrainedMismatchError` unless every tensor of the module is
    filled with the right shape."""
    resizable, new = vit_transfer_rules(module)
    report = compare_state_dicts(module.state_dict(), checkpoint_state,
                                 prefix, name, checkpoint, resizable, new)
    if strict:
        _raise_unless_ok(report, checkpoint_state)
    return report


def _torch_load(path: str) -> Any:
    return torch.load(path, map_location='cpu', weights_only=True)


def load_pretrained(module: nn.Module, path: str, prefix: str = 'backbone.',
                    name: str = 'module', strict: bool = True,
                    loader: Optional[Callable[[str], Any]] = None,
                    logger: Optional[Callable[[str], None]] = print
                    ) -> LoadReport:
    """Load the tensors under ``prefix`` of checkpoint ``path`` into
    ``module``, report what was loaded, and (``strict``) raise
    :class:`PretrainedMismatchError` if the module is not fully filled.

    Args:
        loader: reads the file (default ``torch.load(weights_only=True)``;
            pass :func:`mmmask.engine.checkpoint.load_checkpoint_file` for
            checkpoints written by plain mmengine).
        logger: called with the report's summary (``None``: silent).
    """
    state = checkpoint_state_dict((loader or _torch_load)(path))
    report = check_module_against_checkpoint(module, state, prefix, name,
                                             str(path), strict)
    own = {k: v for k, v in state.items() if k.startswith(prefix)}
    own = {k[len(prefix):]: v for k, v in own.items()}
    own = {k: v for k, v in own.items() if k in report.loaded
           or (_ignored(k) and k in module.state_dict())}
    module.load_state_dict(own, strict=False)
    if logger is not None:
        logger(report.summary())
    return report


def pretrained_init_cfgs(module: nn.Module
                         ) -> Iterable[Tuple[str, nn.Module, dict]]:
    """``(name, submodule, init_cfg)`` for every submodule of ``module``
    whose mmengine ``init_cfg`` (a dict or a list of dicts) has
    ``type='Pretrained'``."""
    for name, sub in module.named_modules():
        cfgs = getattr(sub, 'init_cfg', None)
        if cfgs is None:
            continue
        for cfg in (cfgs if isinstance(cfgs, (list, tuple)) else [cfgs]):
            if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
                yield name or '<model>', sub, cfg


def check_pretrained_inits(model: nn.Module,
                           loader: Optional[Callable[[str], Any]] = None,
                           strict: bool = True) -> List[LoadReport]:
    """Check every ``Pretrained`` ``init_cfg`` of ``model`` against its file
    before ``init_weights`` runs (each file is read once).

    Only the tensors of the submodule that owns the init_cfg are compared,
    so a C4 detector's backbone (res2-res4) and shared head (res5) each get
    their own report. Raises :class:`PretrainedMismatchError` on the first
    submodule that would not be fully initialised (``strict``).
    """
    cache: Dict[str, Dict[str, torch.Tensor]] = {}
    reports = []
    for name, sub, cfg in pretrained_init_cfgs(model):
        path = cfg.get('checkpoint')
        if not isinstance(path, str) or '://' in path:
            continue  # a remote or zoo checkpoint: mmengine resolves it
        if path not in cache:
            cache[path] = checkpoint_state_dict((loader or _torch_load)(path))
        reports.append(check_module_against_checkpoint(
            sub, cache[path], cfg.get('prefix') or '', name, path, strict))
    return reports
