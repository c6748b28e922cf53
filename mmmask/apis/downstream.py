"""The policy of the downstream launchers (``tools/benchmarks/
downstream_train.py`` and its mmdet / mmseg fronts): fine-tune an mmdet,
mmseg or mmpretrain config from a pretrained mmmask checkpoint with
mmengine's ``Runner``, as the libraries' own ``tools/train.py`` do.

The checkpoint goes through mmengine's own ``PretrainedInit``, checkpoint
loader and file backend, exactly as in a stock mmdet / mmseg checkout:
nothing here registers mmmask's loader, backend, models or datasets (only
``--resume`` registers the allow-list loader, which mmengine 0.10.7 needs on
torch >= 2.6 to read its own checkpoints back).

Additions over the stock scripts:

* ``--pretrained CKPT`` sets the ``checkpoint`` of every ``Pretrained``
  ``init_cfg`` of the model that takes the ``backbone.`` prefix (the
  backbone, and the res5 shared head of C4 detectors); ``--pretrained none``
  drops those init_cfgs (random-init baseline).
* Pre-flight check: every ``Pretrained`` init_cfg is compared with its file
  and a report is logged (``backbone: 318/318 tensors loaded from ...``); a
  checkpoint of another architecture stops the run with the missing /
  mismatched keys instead of a silent random init (``--no-check-pretrained``
  skips it).
* Without CUDA, a distributed launch uses gloo CPU processes (SyncBN needs
  CUDA: set the norm layers to BN for such runs).
"""
import argparse
import os.path as osp

from . import launch
from .launch import UsageError

PLACEHOLDER = '<PRETRAIN'


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


def _init_cfgs(node):
    """Every ``Pretrained`` init_cfg dict under a config node, with the
    dict or list that holds it."""
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


def build_cfg(args):
    cfg = launch.load_config(args)
    set_pretrained(cfg, args.pretrained)
    return merge_args(cfg, args)


def preflight(runner, strict=True):
    """Log what every Pretrained init_cfg will load; raise on a mismatch."""
    from mmmask.engine.checkpoint.transfer import (
        PretrainedMismatchError, check_pretrained_inits)
    model = runner.model
    model = getattr(model, 'module', model)
    try:
        reports = check_pretrained_inits(model, strict=strict)
    except PretrainedMismatchError as err:
        raise UsageError(f'pretrained checkpoint does not fit the model: '
                         f'{err}') from None
    for report in reports:
        runner.logger.info('pretrained ' + report.summary())
    return reports


def main(argv=None, scope=None) -> int:
    """Fine-tune from the command line ``argv``; the exit status."""
    args = parse_args(argv, scope)
    try:
        cfg = build_cfg(args)
        from mmengine.registry import RUNNERS, init_default_scope
        init_default_scope(args.scope)
        if launch.needs_cpu_distributed(cfg):
            launch.setup_cpu_distributed(cfg)
        if cfg.get('resume'):
            from mmmask.engine.checkpoint import register_safe_loading
            register_safe_loading()
        runner = launch.build_runner(cfg, RUNNERS)
        if not args.no_check_pretrained:
            preflight(runner)
    except UsageError as err:
        return launch.report_usage_error(err)
    runner.train()
    return 0
