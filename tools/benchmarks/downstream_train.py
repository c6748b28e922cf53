"""Fine-tune a downstream model (mmdet, mmseg, mmpretrain) from a config,
with a pretrained mmmask checkpoint. Shared by
``tools/benchmarks/mmdetection/train.py`` and
``tools/benchmarks/mmsegmentation/train.py`` (the wheels of mmdet and mmseg
do not ship their ``tools/train.py``); usable directly for mmpretrain
configs (``--scope mmpretrain``).

    python tools/benchmarks/downstream_train.py --scope mmdet CONFIG \
        [--pretrained CKPT] [--work-dir DIR] [--resume [auto|PATH]] [--amp]
        [--auto-scale-lr] [--cfg-options K=V ...] [--launcher ...]

It builds mmengine's ``Runner`` from the config as the libraries' own
``tools/train.py`` do and **never imports the mmmask package**: the
checkpoint goes through mmengine's ``PretrainedInit`` exactly as in a stock
mmdet / mmseg checkout. (``mmmask/utils/transfer.py``, which imports only
torch, is loaded by its file path for the pre-flight check.)

Additions over the stock scripts:

* ``--pretrained CKPT`` sets the ``checkpoint`` of every ``Pretrained``
  ``init_cfg`` of the model that takes the ``backbone.`` prefix (the
  backbone, and the res5 shared head of C4 detectors). The same thing by
  hand: ``--cfg-options model.backbone.init_cfg.checkpoint=CKPT`` (plus
  ``model.roi_head.shared_head.init_cfg.checkpoint=CKPT`` for C4).
  ``--pretrained none`` drops those init_cfgs (random-init baseline).
* Pre-flight check: before training, every ``Pretrained`` init_cfg is
  compared with its file and a report is logged (``backbone: 318/318
  tensors loaded from ...``); a checkpoint of another architecture stops the
  run with the missing / mismatched keys instead of a silent random init
  (``--no-check-pretrained`` skips it).
* Without CUDA, a distributed launch uses gloo CPU processes (SyncBN needs
  CUDA: set the norm layers to BN for such runs).
* ``--resume`` on torch >= 2.6: mmengine 0.10.7 cannot read back its own
  checkpoints with a weights-only ``torch.load``; if mmmask is installed its
  allow-list loader is registered for the resume (only then is mmmask
  imported).
"""
import argparse
import importlib.util
import os
import os.path as osp
import subprocess
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PLACEHOLDER = '<PRETRAIN'


class UsageError(Exception):
    """A mistake reported as one line, without a traceback."""


def parse_args(argv=None, scope=None):
    from mmengine.config import DictAction

    parser = argparse.ArgumentParser(
        description=f'Fine-tune a {scope or "downstream"} model from a '
        'pretrained mmmask checkpoint')
    parser.add_argument('config', help='train config file path')
    if scope is None:
        parser.add_argument('--scope', required=True,
                            choices=['mmdet', 'mmseg', 'mmpretrain'],
                            help='default scope of the config')
    parser.add_argument(
        '--pretrained', help='pretrained checkpoint (mmmask checkpoint or '
        'extracted backbone) for every Pretrained init_cfg with the '
        "'backbone.' prefix; 'none' for random init")
    parser.add_argument('--no-check-pretrained', action='store_true',
                        help='skip the pre-flight checkpoint check')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint; without a value, from the '
        'latest checkpoint in the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision training (needs CUDA)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale lr by total batch / '
                        'auto_scale_lr.base_batch_size (linear rule)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, "key=value" with '
                        'dotted keys')
    parser.add_argument('--launcher', default='none',
                        choices=['none', 'pytorch', 'slurm', 'mpi'])
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        dest='local_rank')
    args = parser.parse_args(argv)
    if scope is not None:
        args.scope = scope
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def load_transfer_module():
    """``mmmask/utils/transfer.py`` by file path (it imports only torch), so
    that the mmmask package stays unimported."""
    path = osp.join(ROOT, 'mmmask', 'utils', 'transfer.py')
    spec = importlib.util.spec_from_file_location('_mmmask_transfer', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _init_cfgs(node):
    """Every ``Pretrained`` init_cfg dict under a config node, with the
    dict or list that holds it and its key there."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == 'init_cfg':
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if isinstance(item, dict) and \
                            item.get('type') == 'Pretrained':
                        yield node, item
            else:
                yield from _init_cfgs(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _init_cfgs(value)


def set_pretrained(cfg, path):
    """Point the backbone-prefixed Pretrained init_cfgs to ``path`` (or
    remove them for ``'none'``); fail if a placeholder is left."""
    found = 0
    for owner, init_cfg in list(_init_cfgs(cfg.model)):
        ckpt = init_cfg.get('checkpoint')
        takes_backbone = str(init_cfg.get('prefix') or '').startswith(
            'backbone.') or (isinstance(ckpt, str)
                             and ckpt.startswith(PLACEHOLDER))
        if path is None or not takes_backbone:
            continue
        found += 1
        if path.lower() == 'none':
            if isinstance(owner['init_cfg'], list):
                owner['init_cfg'] = [c for c in owner['init_cfg']
                                     if c is not init_cfg] or None
            else:
                owner['init_cfg'] = None
        else:
            if '://' not in path and not osp.isfile(path):
                raise UsageError(f'pretrained checkpoint not found: {path}')
            init_cfg['checkpoint'] = path
    if path is not None and found == 0:
        raise UsageError('--pretrained given, but the model config has no '
                         "init_cfg=dict(type='Pretrained', prefix="
                         "'backbone.') to receive it")
    for _, init_cfg in _init_cfgs(cfg.model):
        ckpt = init_cfg.get('checkpoint')
        if isinstance(ckpt, str) and ckpt.startswith(PLACEHOLDER):
            raise UsageError(
                'no pretrained checkpoint: pass --pretrained CKPT (the '
                'dist_train.sh PRETRAIN argument) or --cfg-options '
                'model.backbone.init_cfg.checkpoint=CKPT')


def merge_args(cfg, args):
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise UsageError('--amp needs a CUDA device')
        if cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper':
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.auto_scale_lr:
        if 'base_batch_size' not in (cfg.get('auto_scale_lr') or {}):
            raise UsageError('--auto-scale-lr needs auto_scale_lr = '
                             'dict(base_batch_size=N) in the config')
        cfg.auto_scale_lr.enable = True
    if args.resume == 'auto':
        cfg.resume, cfg.load_from = True, None
    elif args.resume is not None:
        cfg.resume, cfg.load_from = True, args.resume
    cfg.launcher = args.launcher
    cfg.default_scope = args.scope
    return cfg


def setup_cpu_distributed(cfg):
    """gloo process group and DDP without device ids (mmengine's
    ``init_dist`` calls ``torch.cuda.set_device``)."""
    import torch.distributed as dist

    cfg.setdefault('env_cfg', dict())
    cfg.env_cfg.setdefault('dist_cfg', dict())
    cfg.env_cfg.dist_cfg.backend = 'gloo'
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False,
        find_unused_parameters=cfg.get('find_unused_parameters', False))
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    if dist.is_initialized():
        return
    env = os.environ
    if cfg.launcher == 'slurm':
        env['RANK'] = env['SLURM_PROCID']
        env['WORLD_SIZE'] = env['SLURM_NTASKS']
        env['LOCAL_RANK'] = env.get('SLURM_LOCALID', '0')
        env.setdefault('MASTER_ADDR', subprocess.getoutput(
            f'scontrol show hostname {env["SLURM_NODELIST"]} | head -n1'))
        env.setdefault('MASTER_PORT', '29500')
    elif cfg.launcher == 'mpi':
        env['RANK'] = env['OMPI_COMM_WORLD_RANK']
        env['WORLD_SIZE'] = env['OMPI_COMM_WORLD_SIZE']
        env['LOCAL_RANK'] = env.get('OMPI_COMM_WORLD_LOCAL_RANK', '0')
        env.setdefault('MASTER_ADDR', '127.0.0.1')
        env.setdefault('MASTER_PORT', '29500')
    dist.init_process_group(backend='gloo')


def enable_resume_loader():
    try:
        import mmmask.engine.checkpoint  # noqa: F401  (registers loader)
    except ImportError:
        print('downstream_train.py: warning: mmmask is not importable; '
              'mmengine 0.10.7 with torch >= 2.6 may fail to resume '
              '(weights-only load of its message hub)', file=sys.stderr)


def build_cfg(args):
    from mmengine.config import Config

    if not osp.isfile(args.config):
        raise UsageError(f'config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    set_pretrained(cfg, args.pretrained)
    return merge_args(cfg, args)


def preflight(runner, strict=True):
    """Log what every Pretrained init_cfg will load; raise on a mismatch."""
    transfer = load_transfer_module()
    model = runner.model
    model = getattr(model, 'module', model)
    try:
        reports = transfer.check_pretrained_inits(model, strict=strict)
    except transfer.PretrainedMismatchError as err:
        raise UsageError(f'pretrained checkpoint does not fit the model: '
                         f'{err}') from None
    for report in reports:
        runner.logger.info('pretrained ' + report.summary())
    return reports


def main(argv=None, scope=None) -> int:
    args = parse_args(argv, scope)
    try:
        cfg = build_cfg(args)
        import torch
        from mmengine.registry import init_default_scope
        from mmengine.runner import Runner
        init_default_scope(args.scope)
        if cfg.launcher != 'none' and not torch.cuda.is_available():
            setup_cpu_distributed(cfg)
        if cfg.get('resume'):
            enable_resume_loader()
        if 'runner_type' in cfg:
            from mmengine.registry import RUNNERS
            runner = RUNNERS.build(cfg)
        else:
            runner = Runner.from_cfg(cfg)
        if not args.no_check_pretrained:
            preflight(runner)
    except UsageError as err:
        print(f'train.py: error: {err}', file=sys.stderr)
        return 2
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(main())
