"""mmmask's registries.

Every registry is a child of mmpretrain's (or of mmengine's where mmpretrain
has none), so an mmmask config can name any mmpretrain part (``type='ResNet'``)
and any part of mmengine, while ``mmmask.X`` shadows a parent's ``X`` in the
``mmmask`` scope. ``MASK_GENERATORS`` is new: one registry for every way of
masking an image or a token grid.

Lazy imports: building from a registry imports its ``locations`` and those of
all its ancestors (mmengine's plain registries only import their own), so a
config works without importing anything by hand. An unknown ``type`` raises
:class:`UnknownTypeError`, which names the registry, the type and the closest
registered names.
"""
import difflib
from typing import Any, List, Optional

from mmengine.registry import DefaultScope, Registry
from mmpretrain import registry as mmpretrain_registry

__all__ = [
    'UnknownTypeError', 'NameClashError', 'MMMaskRegistry', 'RUNNERS',
    'RUNNER_CONSTRUCTORS',
    'LOOPS', 'HOOKS', 'LOG_PROCESSORS', 'OPTIMIZERS', 'OPTIM_WRAPPERS',
    'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'DATASETS',
    'DATA_SAMPLERS', 'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS',
    'WEIGHT_INITIALIZERS', 'BATCH_AUGMENTS', 'TASK_UTILS', 'METRICS',
    'EVALUATORS', 'VISUALIZERS', 'VISBACKENDS', 'MASK_GENERATORS'
]


class UnknownTypeError(KeyError):
    """A config asked for a ``type`` that no registry in the tree holds."""

    def __str__(self) -> str:  # KeyError would print the message quoted
        return str(self.args[0])


class NameClashError(KeyError):
    """A module was registered under a name that is already taken."""

    def __str__(self) -> str:
        return str(self.args[0])


def _qualname(obj: Any) -> str:
    return f'{getattr(obj, "__module__", "?")}.' \
        f'{getattr(obj, "__qualname__", repr(obj))}'


class MMMaskRegistry(Registry):
    """A :class:`mmengine.registry.Registry` with clear lookup failures.

    Differences from the parent class:

    * ``import_from_location`` also imports the ancestors' locations, so the
      parts of mmpretrain (and mmengine) are registered before a lookup.
    * ``get`` raises :class:`UnknownTypeError` instead of returning ``None``
      when the key is in no registry of the tree.
    * Registering a name that is taken raises :class:`NameClashError`
      (naming both classes) unless ``force=True``: a name of this registry,
      or, for code outside the ``mmmask`` package (plugins), a name of an
      ancestor (mmpretrain's ``ContrastiveHead``, ...), which the plugin
      would otherwise silently shadow in every mmmask config. mmmask's own
      modules shadow a few parents' names on purpose (``DenseCL``,
      ``LoadImageFromFile``).
    * ``build`` builds in the ``mmmask`` scope whatever the global default
      scope is (mmengine would switch to the default scope's registry, so
      ``mmmask.registry.MODELS.build`` after, e.g., an mmpretrain tool set
      ``default_scope='mmpretrain'`` could not find mmmask's parts).
    """

    def build(self, cfg, *args, **kwargs) -> Any:
        current = DefaultScope.get_current_instance()
        if current is not None and current.scope_name == self.scope:
            return super().build(cfg, *args, **kwargs)
        with DefaultScope.overwrite_default_scope(self.scope):
            return super().build(cfg, *args, **kwargs)

    def _register_module(self, module, module_name=None,
                         force: bool = False) -> None:
        names = module_name or getattr(module, '__name__', None)
        names = [names] if isinstance(names, str) else list(names or [])
        own_code = getattr(module, '__module__', '').split('.')[0] == 'mmmask'
        for name in names if not force else []:
            taken, where = self._module_dict.get(name), self.scope
            node = self.parent
            while taken is None and node is not None and not own_code:
                taken, where = node._module_dict.get(name), node.scope
                node = node.parent
            if taken is not None and taken is not module:
                raise NameClashError(
                    f'cannot register {_qualname(module)} as {name!r} in the '
                    f'"{self.scope}::{self.name}" registry: {name!r} is '
                    f'already {_qualname(taken)} (registered in {where}). '
                    'Choose another name, or pass force=True to '
                    'register_module to replace it.')
        if not force:  # the same object again (a re-imported module)
            names = [n for n in names if self._module_dict.get(n) is not module]
            if not names:
                return
        super()._register_module(module, names, force=force)

    def import_from_location(self) -> None:
        super().import_from_location()
        parent = self.parent
        while parent is not None:
            parent.import_from_location()
            parent = parent.parent

    def registered_names(self) -> List[str]:
        """All names visible from this registry: its own and its ancestors'."""
        names, node = [], self
        while node is not None:
            names.extend(node.module_dict.keys())
            node = node.parent
        return sorted(set(names))

    def get(self, key: str) -> Any:
        obj = super().get(key)
        if obj is None and isinstance(key, str):
            _, real_key = self.split_scope_key(key)
            close = difflib.get_close_matches(
                real_key, self.registered_names(), n=5, cutoff=0.6)
            if not close:  # fall back to case-insensitive substring matches
                low = real_key.lower()
                close = [n for n in self.registered_names()
                         if low in n.lower() or n.lower() in low][:5]
            hint = (f' Did you mean: {", ".join(close)}?'
                    if close else ' No similar name is registered.')
            raise UnknownTypeError(
                f'Unknown type {key!r} in the "{self.scope}::{self.name}" '
                f'registry (searched {self.scope} and its parents).{hint}')
        return obj


def _child(name: str, parent: Optional[Registry], locations: List[str]):
    return MMMaskRegistry(
        name, parent=parent, scope='mmmask', locations=locations)


_P = mmpretrain_registry
_ENGINE = ['mmmask.engine.hooks', 'mmmask.engine.optimizers']
_MODELS = ['mmmask.models']
_DATA = ['mmmask.datasets']

RUNNERS = _child('runner', _P.RUNNERS, _ENGINE)
RUNNER_CONSTRUCTORS = _child('runner constructor', _P.RUNNER_CONSTRUCTORS,
                             _ENGINE)
LOOPS = _child('loop', _P.LOOPS, _ENGINE)
HOOKS = _child('hook', _P.HOOKS, _ENGINE)
LOG_PROCESSORS = _child('log processor', _P.LOG_PROCESSORS, _ENGINE)
OPTIMIZERS = _child('optimizer', _P.OPTIMIZERS, _ENGINE)
OPTIM_WRAPPERS = _child('optim wrapper', _P.OPTIM_WRAPPERS, _ENGINE)
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    _P.OPTIM_WRAPPER_CONSTRUCTORS, _ENGINE)
PARAM_SCHEDULERS = _child('parameter scheduler', _P.PARAM_SCHEDULERS, _ENGINE)

DATASETS = _child('dataset', _P.DATASETS, _DATA)
DATA_SAMPLERS = _child('data sampler', _P.DATA_SAMPLERS, _DATA)
TRANSFORMS = _child('transform', _P.TRANSFORMS, _DATA)

MODELS = _child('model', _P.MODELS, _MODELS)
MODEL_WRAPPERS = _child('model_wrapper', _P.MODEL_WRAPPERS, _MODELS)
WEIGHT_INITIALIZERS = _child('weight initializer', _P.WEIGHT_INITIALIZERS,
                             _MODELS)
BATCH_AUGMENTS = _child('batch augment', _P.BATCH_AUGMENTS, _MODELS)
TASK_UTILS = _child('task util', _P.TASK_UTILS, _MODELS)
# New in mmmask: every way of masking (pixel-space for ConvNets, token-space
# for ViTs). It has no counterpart in mmpretrain or mmengine.
MASK_GENERATORS = _child('mask generator', None,
                         ['mmmask.models.mask_generators'])

METRICS = _child('metric', _P.METRICS, ['mmmask.evaluation'])
EVALUATORS = _child('evaluator', _P.EVALUATORS, ['mmmask.evaluation'])
# No visualizer of mmmask's own: mmpretrain's and mmengine's are found
# through the parents (the mask and reconstruction pictures are plain
# functions of mmmask/visualization/).
VISUALIZERS = _child('visualizer', _P.VISUALIZERS, [])
VISBACKENDS = _child('vis_backend', _P.VISBACKENDS, [])
