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
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PLACEHOLDER = '<PRETRAIN'

# Shared with tools/train.py, loaded by its path (stdlib, mmengine and torch
# only: it never imports mmmask).
_spec = importlib.util.spec_from_file_location(
    '_launcher_utils', osp.join(ROOT, 'tools', '_launcher_utils.py'))
launch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(launch)
UsageError = launch.UsageError


def parse_args(argv=None, scope=None):
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
    launch.add_run_args(parser,
                        work_dir_help='the dir to save logs and models')
    launch.add_override_and_launcher_args(
        parser,
        auto_scale_lr_help='scale lr by total batch / '
        'auto_scale_lr.base_batch_size (linear rule)',
        cfg_options_help='override config settings, "key=value" with '
        'dotted keys')
    args = launch.parse_launch_args(parser, argv)
    if scope is not None:
        args.scope = scope
    return args


def load_transfer_module():
    """``mmmask/utils/transfer.py`` by file path (it imports only torch), so
    that the mmmask package stays unimported."""
    return launch.load_by_path(
        '_mmmask_transfer', osp.join(ROOT, 'mmmask', 'utils', 'transfer.py'))


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
    launch.set_work_dir(cfg, args)
    if args.amp:
        launch.enable_amp(cfg, lambda wrapper: wrapper == 'OptimWrapper')
    if args.auto_scale_lr:
        launch.enable_auto_scale_lr(cfg)
    launch.set_resume(cfg, args.resume)
    cfg.launcher = args.launcher
    cfg.default_scope = args.scope
    return cfg


def setup_cpu_distributed(cfg):
    """gloo process group and DDP without device ids (mmengine's
    ``init_dist`` calls ``torch.cuda.set_device``)."""
    launch.use_gloo_backend(cfg)
    wrapper = cfg.get('model_wrapper_cfg') or launch.cpu_ddp_wrapper_cfg(cfg)
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
    launch.init_gloo_process_group(cfg.launcher)


def enable_resume_loader():
    try:
        from mmmask.engine.checkpoint import register_safe_loading
    except ImportError:
        print('downstream_train.py: warning: mmmask is not importable; '
              'mmengine 0.10.7 with torch >= 2.6 may fail to resume '
              '(weights-only load of its message hub)', file=sys.stderr)
        return
    register_safe_loading()


def build_cfg(args):
    cfg = launch.load_config(args)
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
        from mmengine.registry import RUNNERS, init_default_scope
        init_default_scope(args.scope)
        if launch.needs_cpu_distributed(cfg):
            setup_cpu_distributed(cfg)
        if cfg.get('resume'):
            enable_resume_loader()
        runner = launch.build_runner(cfg, RUNNERS)
        if not args.no_check_pretrained:
            preflight(runner)
    except UsageError as err:
        return launch.report_usage_error(err)
    runner.train()
    return 0


if __name__ == '__main__':
    sys.exit(main())
