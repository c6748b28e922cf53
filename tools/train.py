"""Train (pretrain) a model from an mmmask config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|PATH]]
        [--amp] [--no-validate] [--auto-scale-lr] [--cfg-options K=V ...]
        [--launcher {none,pytorch,slurm,mpi}]

Multi-process runs go through tools/dist_train.sh (torchrun) or
tools/slurm_train.sh. On a machine without CUDA a distributed run uses CPU
processes and the gloo backend: this script opens the process group itself
and makes the model wrapper run DDP without device ids.

Mistakes in the command line or config (no such config file, a
``--cfg-options`` key the config does not have, no training data) end the run
with one ``train.py: error: ...`` line on stderr and exit status 2.
"""
import argparse
import difflib
import os
import os.path as osp
import subprocess
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(REPO_ROOT, 'mmmask')) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)  # the checkout's mmmask first


class UsageError(Exception):
    """A mistake reported as one line, without a traceback."""


def parse_args(argv=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models '
                        '(default: ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a value, from the '
        'latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision training (needs CUDA)')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not validate during training')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the learning rate by total batch size / '
                        'auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, "key=value" with dotted keys '
        '(list items by index: a.0.b=1); every key must already exist in '
        'the config')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm',
                                               'mpi'], default='none',
                        help='job launcher')
    # torch.distributed.launch passes --local-rank (torch>=2) or --local_rank.
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        dest='local_rank')
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


# --------------------------------------------------------------------------
# config checks and overrides
# --------------------------------------------------------------------------
def check_option_keys(cfg, options: dict) -> None:
    """Every dotted key of ``options`` must exist in ``cfg`` (list items by
    index); mmengine's ``merge_from_dict`` would silently add a misspelt one.
    """
    root = cfg.to_dict()
    for key in options:
        node, path = root, []
        for part in key.split('.'):
            where = '.'.join(path) or 'the config'
            if isinstance(node, dict):
                if part not in node:
                    close = difflib.get_close_matches(
                        part, [str(k) for k in node], n=3, cutoff=0.6)
                    hint = (f'; did you mean {", ".join(close)}?'
                            if close else '')
                    raise UsageError(
                        f'--cfg-options key {key!r} does not exist in the '
                        f'config ({where} has no key {part!r}){hint}')
                node = node[part]
            elif isinstance(node, (list, tuple)):
                if not part.lstrip('-').isdigit() or not (
                        -len(node) <= int(part) < len(node)):
                    raise UsageError(
                        f'--cfg-options key {key!r} does not exist in the '
                        f'config ({where} is a list of {len(node)} items; '
                        f'{part!r} is not an index of it)')
                node = node[int(part)]
            else:
                raise UsageError(
                    f'--cfg-options key {key!r} does not exist in the config '
                    f'({where} is {type(node).__name__} {node!r}, not a dict '
                    f'or list)')
            path.append(part)


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
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])

    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise UsageError('--amp needs a CUDA device; this machine has '
                             'none (train without --amp)')
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        if optim_wrapper not in ('AmpOptimWrapper', 'DeepSpeedOptimWrapper'):
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if '://' not in args.resume and not osp.isfile(args.resume):
            raise UsageError(f'--resume checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume

    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not isinstance(scale, dict) or 'base_batch_size' not in scale:
            raise UsageError(
                '--auto-scale-lr needs auto_scale_lr = dict(base_batch_size=N)'
                ' in the config (the batch size its lr was set for)')
        cfg.auto_scale_lr.enable = True

    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None

    cfg.launcher = args.launcher
    return cfg


# --------------------------------------------------------------------------
# distributed runs on CPU-only machines
# --------------------------------------------------------------------------
def _set_env_from(launcher: str) -> None:
    """RANK / WORLD_SIZE / LOCAL_RANK / MASTER_* for gloo's env:// init."""
    env = os.environ
    if launcher == 'slurm':
        env['RANK'] = env['SLURM_PROCID']
        env['WORLD_SIZE'] = env['SLURM_NTASKS']
        env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')
        if 'MASTER_ADDR' not in env:
            env['MASTER_ADDR'] = subprocess.getoutput(
                f'scontrol show hostname {env["SLURM_NODELIST"]} | head -n1')
        env.setdefault('MASTER_PORT', '29500')
    elif launcher == 'mpi':
        env['RANK'] = env['OMPI_COMM_WORLD_RANK']
        env['WORLD_SIZE'] = env['OMPI_COMM_WORLD_SIZE']
        env['LOCAL_RANK'] = env.get('OMPI_COMM_WORLD_LOCAL_RANK', '0')
        env.setdefault('MASTER_ADDR', '127.0.0.1')
        env.setdefault('MASTER_PORT', '29500')
    # pytorch (torchrun) sets all of them itself.


def setup_cpu_distributed(cfg) -> None:
    """Open a gloo process group and make DDP run on CPU modules.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``, and its default
    DDP wrapper passes ``device_ids=[LOCAL_RANK]``, which DDP refuses for CPU
    modules. The Runner skips ``init_dist`` when a group already exists.
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from mmmask.registry import MODEL_WRAPPERS

    if cfg.get('env_cfg') is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg') is None:
        cfg.env_cfg.dist_cfg = dict()
    cfg.env_cfg.dist_cfg.backend = 'gloo'

    wrapper = cfg.get('model_wrapper_cfg')
    if wrapper is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    else:
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        wrapper_type = wrapper['type']
        if isinstance(wrapper_type, str):
            wrapper_type = MODEL_WRAPPERS.get(wrapper_type)
        if isinstance(wrapper_type, type) and issubclass(
                wrapper_type, DistributedDataParallel):
            wrapper['device_ids'] = None

    if not dist.is_initialized():
        _set_env_from(cfg.launcher)
        kwargs = {}
        timeout = cfg.env_cfg.dist_cfg.get('timeout')
        if timeout is not None:
            import datetime
            kwargs['timeout'] = datetime.timedelta(seconds=timeout)
        dist.init_process_group(backend='gloo', **kwargs)


def add_safe_checkpoint_hook(cfg) -> None:
    try:
        from mmmask.engine import ensure_safe_checkpoint_hook
    except ImportError:
        try:
            from mmmask.engine.checkpoint import ensure_safe_checkpoint_hook
        except ImportError:  # a checkout without the safe checkpoint hook
            return
    ensure_safe_checkpoint_hook(cfg)


# --------------------------------------------------------------------------
def build_cfg(args):
    from mmengine.config import Config

    if not osp.isfile(args.config):
        raise UsageError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        check_option_keys(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    cfg = merge_args(cfg, args)
    check_data_root(cfg)
    add_safe_checkpoint_hook(cfg)
    return cfg


def build_runner(cfg):
    from mmengine.runner import Runner

    from mmmask.registry import RUNNERS
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return Runner.from_cfg(cfg)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        cfg = build_cfg(args)
        import torch
        import mmmask.engine  # noqa: F401  (hooks, checkpoint loader)
        if cfg.launcher != 'none' and not torch.cuda.is_available():
            setup_cpu_distributed(cfg)
        runner = build_runner(cfg)
    except UsageError as err:
        print(f'train.py: error: {err}', file=sys.stderr)
        return 2
    except KeyError as err:
        from mmmask.registry import UnknownTypeError
        if not isinstance(err, UnknownTypeError):
            raise
        print(f'train.py: error: {err}', file=sys.stderr)
        return 2
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(main())
