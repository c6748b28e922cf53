"""The policy of ``tools/train.py``: command line -> config -> runner ->
training, with one ``train.py: error: ...`` line for a known mistake.

Mistakes in the command line or config (no such config file, a
``--cfg-options`` key the config does not have, no training data) end the
run with exit status 2. Bad input met while training (an
:class:`mmmask.errors.MMMaskError`: a corrupt image, a NaN loss, no batch
from the data, a neck that does not fit the backbone) ends it with exit
status 1.
"""
import argparse
import os
import os.path as osp
import sys

from . import launch
from .launch import UsageError, check_option_keys  # noqa: F401

PROG = 'train.py'
#: The runtime defaults of every mmmask config, the one list of the hooks
#: that every run has (``custom_hooks``).
DEFAULT_RUNTIME = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs',
    '_base_', 'default_runtime.py')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog=PROG, description='Train a model')
    parser.add_argument('config', help='train config file path')
    launch.add_run_args(parser, work_dir_help='the dir to save logs and '
                        'models (default: ./work_dirs/<config name>)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not validate during training')
    launch.add_override_and_launcher_args(
        parser,
        auto_scale_lr_help='scale the learning rate by total batch size / '
        'auto_scale_lr.base_batch_size',
        cfg_options_help='override config settings, "key=value" with dotted '
        'keys (list items by index: a.0.b=1); every key must already exist '
        'in the config',
        launcher_help='job launcher')
    return launch.parse_launch_args(parser, argv)


# --------------------------------------------------------------------------
# config checks and overrides
# --------------------------------------------------------------------------
def find_data_root(dataset_cfg):
    """data_root of a dataset config, looking through dataset wrappers."""
    while isinstance(dataset_cfg, dict):
        if dataset_cfg.get('data_root'):
            return dataset_cfg['data_root']
        inner = dataset_cfg.get('dataset')
        if isinstance(inner, (list, tuple)):  # ConcatDataset: the first
            inner = inner[0] if inner else None
        if inner is None:
            inner = (dataset_cfg.get('datasets') or [None])[0]
        dataset_cfg = inner
    return None


def check_data_root(cfg) -> None:
    loader = cfg.get('train_dataloader')
    if not isinstance(loader, dict):
        return
    data_root = find_data_root(loader.get('dataset'))
    if not isinstance(data_root, str) or '://' in data_root:
        return  # none given, or a remote backend
    if not osp.isdir(data_root):
        raise UsageError(
            f'train data root {data_root!r} not found (resolved from '
            f'{os.getcwd()} to {osp.abspath(data_root)}): for the demo '
            'configs run "python tools/make_demo_data.py" (or --out '
            f'{data_root}), for ImageNet configs put ImageNet under '
            'data/imagenet/ (train/ and meta/train.txt), or set '
            '--cfg-options train_dataloader.dataset.data_root=DIR')


def merge_args(cfg, args):
    """Apply the command line to ``cfg`` the way mmpretrain's train.py does."""
    launch.set_work_dir(cfg, args)
    if args.amp:
        launch.enable_amp(
            cfg, lambda wrapper: wrapper not in ('AmpOptimWrapper',
                                                 'DeepSpeedOptimWrapper'),
            cuda_hint='; this machine has none (train without --amp)')
    launch.set_resume(cfg, args.resume, check_file=True)
    if args.auto_scale_lr:
        launch.enable_auto_scale_lr(
            cfg, hint=' (the batch size its lr was set for)')
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.launcher = args.launcher
    return cfg


def adapt_to_strategy(cfg) -> None:
    """``strategy=dict(type='DeepSpeedStrategy')`` (FlexibleRunner): DeepSpeed
    steps the optimizer, so the optim wrapper becomes a
    DeepSpeedOptimWrapper (a strategy ``_base_`` file cannot change
    ``optim_wrapper``, which the method's config sets)."""
    strategy = cfg.get('strategy')
    if not isinstance(strategy, dict) or \
            strategy.get('type') != 'DeepSpeedStrategy':
        return
    wrapper = cfg.get('optim_wrapper')
    if isinstance(wrapper, dict) and wrapper.get('type', 'OptimWrapper') in (
            'OptimWrapper', 'AmpOptimWrapper'):
        wrapper['type'] = 'DeepSpeedOptimWrapper'
        wrapper.pop('loss_scale', None)  # DeepSpeed's fp16 config does this


def warn(message: str) -> None:
    """A warning before the runner's logger exists."""
    print(f'{PROG}: warning: {message}', file=sys.stderr)


def _hook_type(hook) -> str:
    """A hook's type name without its scope, from a config dict (type given
    by name or class) or a built hook."""
    kind = hook.get('type') if isinstance(hook, dict) else type(hook)
    return str(getattr(kind, '__name__', kind)).split('.')[-1]


def add_default_hooks(cfg, defaults=DEFAULT_RUNTIME) -> list:
    """Append to ``cfg.custom_hooks`` each hook of the ``custom_hooks`` of
    ``defaults`` (``configs/_base_/default_runtime.py``: plain checkpoints,
    exact resume, the NaN-loss stop, the data check) whose type the list
    lacks, and warn naming them: a config that does not inherit the runtime
    defaults trains under ``tools/train.py`` as one that does. Returns the
    added type names."""
    from mmengine.config import Config

    if not osp.isfile(defaults):  # an installed package without configs/
        return []
    hooks = list(cfg.get('custom_hooks', None) or [])
    have = {_hook_type(h) for h in hooks}
    added = [h for h in Config.fromfile(defaults).custom_hooks
             if _hook_type(h) not in have]
    cfg['custom_hooks'] = hooks + added
    names = [_hook_type(h) for h in added]
    if names:
        warn(f'the config\'s custom_hooks lack {", ".join(names)}: added '
             f'as {osp.relpath(defaults)} lists them')
    return names


def resolve_auto_resume(cfg) -> None:
    """``--resume auto``: the newest checkpoint of the work dir that loads
    (a corrupt newest one is skipped with a warning); none: a fresh start.

    mmengine's own lookup takes whatever ``last_checkpoint`` names.
    """
    if cfg.get('resume') is not True or cfg.get('load_from'):
        return
    from mmmask.engine.checkpoint import find_resumable_checkpoint

    path = find_resumable_checkpoint(cfg.work_dir, warn=warn)
    if path is None:
        warn(f'--resume auto: no loadable checkpoint in {cfg.work_dir}; '
             'training starts from scratch')
        cfg.resume = False
    else:
        cfg.load_from = path


def build_cfg(args):
    cfg = launch.load_config(args, check_options=check_option_keys)
    cfg = merge_args(cfg, args)
    adapt_to_strategy(cfg)
    check_data_root(cfg)
    add_default_hooks(cfg)
    resolve_auto_resume(cfg)
    return cfg


def build_runner(cfg):
    from mmmask.registry import MODEL_WRAPPERS, RUNNERS
    if launch.needs_cpu_distributed(cfg):
        launch.setup_cpu_distributed(cfg, MODEL_WRAPPERS)
    return launch.build_runner(cfg, RUNNERS)


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------
def one_line(err: BaseException) -> str:
    """The message of ``err`` in one line. An error re-raised by a
    DataLoader worker carries the worker's traceback in its message: its
    last line holds the original message."""
    lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    last = lines[-1]
    name, sep, rest = last.partition(': ')
    if len(lines) > 1 and sep and name.split('.')[-1] == type(err).__name__:
        return rest
    return last


def known_error(err: BaseException):
    """The one-line message of a known mistake in the input or config, or
    None for anything else (which keeps its traceback)."""
    from mmmask.errors import CheckpointError, MMMaskError
    if isinstance(err, CheckpointError):  # the file and what is wrong
        return str(err).splitlines()[0]
    if isinstance(err, MMMaskError):
        return one_line(err)
    # mmpretrain's CustomDataset on a folder without images
    if isinstance(err, RuntimeError) and str(err).startswith('Found 0 files'):
        return 'the train dataset is empty: ' + one_line(err)
    return None


def main(argv=None) -> int:
    """Train from the command line ``argv``; the exit status."""
    args = parse_args(argv)
    try:
        cfg = build_cfg(args)
        from mmmask.engine.checkpoint import register_safe_loading
        register_safe_loading()  # allow-list loader, atomic local writes
        runner = build_runner(cfg)
    except UsageError as err:
        return launch.report_usage_error(err, PROG)
    except KeyError as err:
        from mmmask.registry import NameClashError, UnknownTypeError
        if not isinstance(err, (UnknownTypeError, NameClashError)):
            raise
        return launch.report_usage_error(err, PROG)
    except Exception as err:  # a bad value met while building the model
        message = known_error(err)
        if message is None:
            raise
        print(f'{PROG}: error: {message}', file=sys.stderr)
        return 1
    try:
        runner.train()
    except Exception as err:
        message = known_error(err)
        if message is None:
            raise
        print(f'{PROG}: error: {message}', file=sys.stderr)
        return 1
    return 0
