"""Launch code shared by ``tools/train.py`` and
``tools/benchmarks/downstream_train.py``: the common command-line flags,
config loading, work dir / resume / AMP / lr-scaling handling, gloo process
groups for distributed runs on machines without CUDA, runner building and
one-line errors.

It imports only the standard library at load time (mmengine and torch inside
the functions) and **never the mmmask package**: downstream_train.py runs
mmdet / mmseg as a checkout without mmmask would. Both scripts load this
file by its path, so tools/ need not be on ``sys.path``::

    spec = importlib.util.spec_from_file_location('_launcher_utils', PATH)
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)

Each script keeps its own help texts and messages; where the two differ on
purpose (a check only one of them makes), the helper takes it as an argument.
"""
import importlib.util
import os
import os.path as osp
import subprocess
import sys

LAUNCHERS = ['none', 'pytorch', 'slurm', 'mpi']


class UsageError(Exception):
    """A mistake reported as one line, without a traceback."""


def load_by_path(name, path):
    """The Python file ``path`` as a module named ``name`` (not put in
    ``sys.modules``, and its package, if any, is not imported)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def use_gloo_backend(cfg):
    """``env_cfg.dist_cfg.backend = 'gloo'``, creating what is missing."""
    if cfg.get('env_cfg') is None:
        cfg.env_cfg = dict()
    if cfg.env_cfg.get('dist_cfg') is None:
        cfg.env_cfg.dist_cfg = dict()
    cfg.env_cfg.dist_cfg.backend = 'gloo'


def cpu_ddp_wrapper_cfg(cfg) -> dict:
    """mmengine's default DDP wrapper, without device ids (DDP refuses them
    for CPU modules; mmengine's default passes ``[LOCAL_RANK]``)."""
    return dict(type='MMDistributedDataParallel', device_ids=None,
                broadcast_buffers=False,
                find_unused_parameters=cfg.get('find_unused_parameters',
                                               False))


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


def init_gloo_process_group(launcher, timeout=None):
    """Open the gloo process group (unless one is open), the environment
    taken from ``launcher``; ``timeout`` in seconds.

    mmengine's ``init_dist`` calls ``torch.cuda.set_device``; the Runner
    skips it when a group already exists.
    """
    import torch.distributed as dist

    if dist.is_initialized():
        return
    set_dist_env(launcher)
    kwargs = {}
    if timeout is not None:
        import datetime
        kwargs['timeout'] = datetime.timedelta(seconds=timeout)
    dist.init_process_group(backend='gloo', **kwargs)


# --------------------------------------------------------------------------
def build_runner(cfg, runners):
    """The runner class that ``cfg.runner_type`` names in ``runners`` (e.g.
    ``'FlexibleRunner'``), else mmengine's ``Runner``, built by its
    ``from_cfg``.

    Not ``runners.build(cfg)``: that builds inside a temporary default scope,
    and the scope the runner sets up for itself (``default_scope``, which
    its later builds of datasets and models rely on) is gone when it
    returns.
    """
    from mmengine.runner import Runner

    runner_type = cfg.get('runner_type')
    if runner_type is None:
        return Runner.from_cfg(cfg)
    if isinstance(runner_type, str):
        name, runner_type = runner_type, runners.get(runner_type)
        if runner_type is None:  # mmengine's registries return None
            raise UsageError(f'runner_type {name!r} is not a registered '
                             'runner (e.g. Runner, FlexibleRunner)')
    return runner_type.from_cfg(cfg)
