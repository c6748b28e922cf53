"""What ``tools/train.py`` and the downstream launchers share: the common
command-line flags, config loading (strict ``--cfg-options``), work dir /
resume / AMP / lr-scaling, gloo process groups and CPU DDP for distributed
runs on machines without CUDA, runner building and one-line errors.

It imports only the standard library at load time (mmengine and torch
inside the functions) and nothing else of mmmask.
"""
import datetime
import difflib
import os
import os.path as osp
import subprocess
import sys
import time

LAUNCHERS = ['none', 'pytorch', 'slurm', 'mpi']


class UsageError(Exception):
    """A mistake reported as one line, without a traceback."""


def report_usage_error(err, prog='train.py') -> int:
    """Print ``err`` as one ``PROG: error: ...`` line; the exit status 2."""
    print(f'{prog}: error: {err}', file=sys.stderr)
    return 2


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------
def add_run_args(parser, work_dir_help):
    """``--work-dir``, ``--resume [auto|PATH]`` and ``--amp``."""
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a value, from the '
        'latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision training (needs CUDA)')


def add_override_and_launcher_args(parser, auto_scale_lr_help,
                                   cfg_options_help, launcher_help=None):
    """``--auto-scale-lr``, ``--cfg-options K=V ...``, ``--launcher`` and
    ``--local-rank``."""
    from mmengine.config import DictAction

    parser.add_argument('--auto-scale-lr', action='store_true',
                        help=auto_scale_lr_help)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help=cfg_options_help)
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help=launcher_help)
    # torch.distributed.launch passes --local-rank (torch>=2) or --local_rank.
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        dest='local_rank')


def parse_launch_args(parser, argv=None):
    """``parser.parse_args(argv)``; LOCAL_RANK from ``--local-rank`` unless
    the launcher has set it."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


# --------------------------------------------------------------------------
# config
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


def load_config(args, check_options=None):
    """``args.config`` with ``--cfg-options`` merged in, after
    ``check_options(cfg, options)`` where given."""
    from mmengine.config import Config

    if not osp.isfile(args.config):
        raise UsageError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        if check_options is not None:
            check_options(cfg, args.cfg_options)
        cfg.merge_from_dict(args.cfg_options)
    return cfg


def set_work_dir(cfg, args):
    """``--work-dir``, else the config's, else ./work_dirs/<config name>."""
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])


def enable_amp(cfg, switch, cuda_hint=''):
    """``--amp``: a UsageError without CUDA; an optim wrapper whose type
    ``switch(type)`` accepts becomes an AmpOptimWrapper (dynamic loss
    scale unless the config sets one)."""
    import torch
    if not torch.cuda.is_available():
        raise UsageError('--amp needs a CUDA device' + cuda_hint)
    if switch(cfg.optim_wrapper.get('type', 'OptimWrapper')):
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def set_resume(cfg, resume, check_file=False):
    """``--resume``: 'auto' (the work dir's latest checkpoint) or a path,
    which must exist when ``check_file`` is set (URLs are not checked)."""
    if resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif resume is not None:
        if check_file and '://' not in resume and not osp.isfile(resume):
            raise UsageError(f'--resume checkpoint not found: {resume}')
        cfg.resume = True
        cfg.load_from = resume


def enable_auto_scale_lr(cfg, hint=''):
    """``--auto-scale-lr``: needs ``auto_scale_lr.base_batch_size``."""
    scale = cfg.get('auto_scale_lr')
    if not isinstance(scale, dict) or 'base_batch_size' not in scale:
        raise UsageError('--auto-scale-lr needs auto_scale_lr = '
                         'dict(base_batch_size=N) in the config' + hint)
    cfg.auto_scale_lr.enable = True


# --------------------------------------------------------------------------
# distributed runs on CPU-only machines
# --------------------------------------------------------------------------
def needs_cpu_distributed(cfg) -> bool:
    """A distributed launch on a machine without CUDA (gloo, CPU DDP)."""
    import torch
    return cfg.launcher != 'none' and not torch.cuda.is_available()


def set_dist_env(launcher: str) -> None:
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


def setup_cpu_distributed(cfg, wrappers=None) -> None:
    """Open a gloo process group (environment from ``cfg.launcher``,
    timeout from ``env_cfg.dist_cfg.timeout``) and make the model wrapper
    run on CPU modules.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device`` (the Runner
    skips it when a group exists), and its DDP wrapper passes
    ``device_ids=[LOCAL_RANK]``, which DDP refuses for CPU modules: a
    ``model_wrapper_cfg`` (or a FlexibleRunner ``strategy``'s
    ``model_wrapper``) of a DDP class gets ``device_ids=None``, FSDP
    ``device_id='cpu'``; without one, mmengine's default DDP wrapper is
    configured so. ``wrappers``: the registry a wrapper's type name is
    looked up in (default: mmengine's ``MODEL_WRAPPERS``).
    """
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    env = cfg.get('env_cfg') or dict()
    env['dist_cfg'] = env.get('dist_cfg') or dict()
    env['dist_cfg']['backend'] = 'gloo'
    cfg.env_cfg = env
    strategy = cfg.get('strategy')
    if isinstance(strategy, dict):  # FlexibleRunner
        kind = strategy.get('type')
        if kind in ('DDPStrategy', 'FSDPStrategy'):
            strategy.model_wrapper = strategy.get('model_wrapper') or {}
            if kind == 'DDPStrategy':
                strategy.model_wrapper.device_ids = None
            else:  # FSDP refuses None without an accelerator
                strategy.model_wrapper.device_id = 'cpu'  # -> torch.device
    elif cfg.get('model_wrapper_cfg') is None:
        cfg.model_wrapper_cfg = dict(
            type='MMDistributedDataParallel', device_ids=None,
            broadcast_buffers=False,
            find_unused_parameters=cfg.get('find_unused_parameters', False))
    else:
        wrapper = cfg.model_wrapper_cfg
        wrapper.setdefault('type', 'MMDistributedDataParallel')
        wrapper_type = wrapper['type']
        if isinstance(wrapper_type, str):
            if wrappers is None:
                from mmengine.registry import MODEL_WRAPPERS as wrappers
            wrapper_type = wrappers.get(wrapper_type)
        if isinstance(wrapper_type, type) and issubclass(
                wrapper_type, DistributedDataParallel):
            wrapper['device_ids'] = None
    if dist.is_initialized():
        return
    set_dist_env(cfg.launcher)
    timeout = cfg.env_cfg.dist_cfg.get('timeout')
    kwargs = {} if timeout is None else dict(
        timeout=datetime.timedelta(seconds=timeout))
    dist.init_process_group(backend='gloo', **kwargs)


# --------------------------------------------------------------------------
#: the second (``int(time.time())``) the last runner of this process was
#: built by; see :func:`build_runner`
_last_build = [None]


def build_runner(cfg, runners):
    """The runner class that ``cfg.runner_type`` names in ``runners`` (e.g.
    ``'FlexibleRunner'``), else mmengine's ``Runner``, built by its
    ``from_cfg``.

    Not ``runners.build(cfg)``: that builds inside a temporary default scope,
    and the scope the runner sets up for itself (``default_scope``, which
    its later builds of datasets and models rely on) is gone when it
    returns.

    Each runner of a process is built in a later second than the one before
    it (waiting up to a second when needed): mmengine names a run's
    timestamp, log folder, log file and logger after the second it starts
    in, and ``MMLogger.get_instance`` hands a second run of the same name
    the first one's logger and file.
    """
    from mmengine.runner import Runner

    runner_type = cfg.get('runner_type')
    if isinstance(runner_type, str):
        name, runner_type = runner_type, runners.get(runner_type)
        if runner_type is None:  # mmengine's registries return None
            raise UsageError(f'runner_type {name!r} is not a registered '
                             'runner (e.g. Runner, FlexibleRunner)')
    while _last_build[0] is not None and int(time.time()) <= _last_build[0]:
        time.sleep(0.02)
    try:
        return (runner_type or Runner).from_cfg(cfg)
    finally:
        _last_build[0] = int(time.time())
