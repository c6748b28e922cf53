"""Helpers shared by the tests (imported as ``helpers``: pytest puts tests/
on ``sys.path``).

* transfer tests (tests/test_apis/test_transfer_mmdet.py,
  tests/test_apis/test_transfer_mmseg.py):
  subprocess runs, the bundled photographs, the 2-iteration mmmask DenseCL
  ResNet-50 checkpoint (the ``checkpoint`` fixture of tests/conftest.py),
  the probe hook, tiny configs over the benchmark configs, logged losses;
* tiny MoCo v2 / DenseCL models built by mmpretrain and by mmmask
  (tests/test_engine/test_convert_mmpretrain.py,
  tests/test_models/test_equivalence_mmpretrain.py).

Nothing here imports mmmask or mmpretrain at import time.
"""
import json
import math
import os
import os.path as osp
import subprocess
import sys
import textwrap

import numpy as np
from stock_check import STOCK_MMENGINE

TESTS = osp.dirname(osp.abspath(__file__))  # tests/: helpers, stock_check
ROOT = osp.dirname(TESTS)

# name -> class name, box (x0, y0, x1, y1) as fractions of the image
PHOTOS = {
    'astronaut': ('person', (0.15, 0.05, 0.95, 1.0)),
    'chelsea': ('cat', (0.1, 0.05, 0.85, 0.95)),
    'coffee': ('cup', (0.15, 0.05, 0.85, 0.8)),
    'rocket': ('rocket', (0.35, 0.05, 0.62, 0.95)),
}
IMAGE_SIZE = (128, 96)  # w, h


# --------------------------------------------------------------------------
# transfer tests: runs, photographs, checkpoint, probe, losses
# --------------------------------------------------------------------------
def env(extra_path=None):
    e = dict(os.environ)
    paths = [p for p in (extra_path, e.get('PYTHONPATH')) if p]
    e['PYTHONPATH'] = os.pathsep.join(paths)
    e['OMP_NUM_THREADS'] = '1'
    return e


def run(cmd, timeout=300, extra_path=None):
    proc = subprocess.run(cmd, cwd=ROOT, env=env(extra_path),
                          timeout=timeout, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    return proc


def check_ok(proc):
    assert proc.returncode == 0, (
        f'exit {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n'
        f'--- stderr\n{proc.stderr[-6000:]}')


def real_photos():
    """The four bundled photographs, resized to IMAGE_SIZE, as uint8 RGB."""
    from PIL import Image
    from skimage import data
    return {name: np.asarray(Image.fromarray(getattr(data, name)())
                             .convert('RGB').resize(IMAGE_SIZE))
            for name in PHOTOS}


# method -> (config, model overrides, views in the pipeline, packed keys) of
# the 2-iteration ResNet-50 pretraining runs whose checkpoints the transfer
# tests load (64 px views of the demo images, batch 2).
_R50_RUNS = {
    'densecl': (osp.join(ROOT, 'configs', 'demo', 'densecl_r18_demo.py'),
                "queue_len=8, backbone=dict(depth=50), "
                "neck=dict(in_channels=2048, hid_channels=256)",
                "dict(type='MultiView', num_views=2, transforms=[view])", []),
    'saliency_mocov2': (
        osp.join(ROOT, 'configs', 'saliency_mocov2_r50.py'),
        "queue_len=8, neck=dict(hid_channels=256), "
        "query_mask=dict(base_size=64), hard_negative_mask=dict(base_size=64)",
        "dict(type='MultiView', num_views=2, transforms=[view])", []),
    'maskco': (
        osp.join(ROOT, 'configs', 'maskco_r50.py'),
        "queue_len=8, neck=dict(hid_channels=256), "
        "mask_head=dict(num_convs=1)",
        "dict(type='GeometricMultiView', num_views=2, transforms=[view], "
        "min_overlap=0.05), dict(type='SampleOverlapRegion')",
        ['view_geometry', 'regions', 'region_valid', 'neg_regions']),
}


def pretrained_r50(base_dir, method='densecl', dist_gpus=None):
    """Path of a 2-iteration mmmask ResNet-50 checkpoint of ``method``
    (a key of ``_R50_RUNS``) trained by tools/train.py, made once per test
    session (kept under pytest's session temp dir); with ``dist_gpus``, by
    ``tools/dist_train.sh CONFIG dist_gpus`` instead (NCCL on CUDA)."""
    base, model, views, keys = _R50_RUNS[method]
    work = osp.join(str(base_dir), f'mmmask_{method}_r50_pretrain' +
                    (f'_dist{dist_gpus}' if dist_gpus else ''))
    ckpt = osp.join(work, 'iter_2.pth')
    if osp.isfile(ckpt):
        return ckpt
    data_root = osp.join(work, 'images')
    check_ok(run([sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'),
                  '--out', data_root, '--num', '8']))
    cfg = osp.join(work, f'{method}_r50_tiny.py')
    with open(cfg, 'w') as f:
        f.write(textwrap.dedent(f"""\
            _base_ = {base!r}
            model = dict({model})
            view = [dict(type='RandomResizedCrop', scale=64,
                         crop_ratio_range=(0.2, 1.), backend='pillow'),
                    dict(type='RandomFlip', prob=0.5)]
            train_dataloader = dict(
                batch_size=2, num_workers=0, persistent_workers=False,
                dataset=dict(_delete_=True, type='CustomDataset',
                             with_label=False, data_root={data_root!r},
                             pipeline=[
                    dict(type='LoadImageFromFile'),
                    {views},
                    dict(type='PackInputs', algorithm_keys={keys!r})]))
            train_cfg = dict(_delete_=True, type='IterBasedTrainLoop',
                             max_iters=2)
            param_scheduler = []
            default_hooks = dict(logger=dict(interval=1),
                                 checkpoint=dict(by_epoch=False, interval=2))
            log_processor = dict(by_epoch=False)
            """))
    if dist_gpus:
        cmd = ['env', f'PYTHON={sys.executable}', 'bash',
               osp.join(ROOT, 'tools', 'dist_train.sh'), cfg, str(dist_gpus)]
    else:
        cmd = [sys.executable, osp.join(ROOT, 'tools', 'train.py'), cfg]
    proc = run(cmd + ['--work-dir', work], extra_path=ROOT)
    check_ok(proc)
    assert osp.isfile(ckpt), os.listdir(work)
    return ckpt


PROBE = '''
"""Test-only hook (never imports mmmask): after init_weights, compare the
model's backbone (and C4 shared head) tensors with the checkpoint's."""
import json
import sys

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from stock_check import mmengine_stock


@HOOKS.register_module()
class TransferProbeHook(Hook):
    priority = 'VERY_HIGH'

    def __init__(self, checkpoint, out):
        self.checkpoint, self.out = checkpoint, out

    def before_train(self, runner):
        ckpt = torch.load(self.checkpoint, map_location='cpu',
                          weights_only=True)['state_dict']
        model = getattr(runner.model, 'module', runner.model)
        result = dict(backbone=0, shared_head=0, differ=[],
                      backbone_total=0,
                      stock=mmengine_stock(self.checkpoint))
        for key, value in model.state_dict().items():
            if key.startswith('backbone.'):
                source, kind = key, 'backbone'
            elif '.shared_head.layer4.' in key:
                source = 'backbone.' + key.split('.shared_head.', 1)[1]
                kind = 'shared_head'
            else:
                continue
            if kind == 'backbone':
                result['backbone_total'] += 1
            if source in ckpt and torch.equal(ckpt[source], value):
                result[kind] += 1
            else:
                result['differ'].append(key)
        result['ckpt_layer4'] = sum(k.startswith('backbone.layer4.')
                                    for k in ckpt)
        with open(self.out, 'w') as f:
            json.dump(result, f)
'''


def write_probe(directory):
    with open(osp.join(directory, 'transfer_probe.py'), 'w') as f:
        f.write(PROBE)
    return os.pathsep.join([str(directory), TESTS])


def run_probed(script, tiny_config, ckpt, tmp_path):
    """Run the downstream launcher ``script`` on ``tiny_config`` (written
    with ``write_tiny_config``, probe output ``tmp_path/probe.json``) with
    ``--pretrained ckpt``; check it succeeded and that the checkpoint went
    through mmengine's own loader and file backend. Returns (process, probe result, work dir)."""
    work = osp.join(str(tmp_path), 'work')
    proc = run([sys.executable, script, tiny_config, '--pretrained', ckpt,
                '--work-dir', work], extra_path=write_probe(tmp_path))
    check_ok(proc)
    with open(osp.join(str(tmp_path), 'probe.json')) as f:
        probe = json.load(f)
    assert probe['stock'] == STOCK_MMENGINE
    assert probe['differ'] == []
    return proc, probe, work


def read_losses(work_dir):
    """The logged training scalars of the (only) run in ``work_dir``."""
    runs = [osp.join(work_dir, d, 'vis_data', 'scalars.json')
            for d in sorted(os.listdir(work_dir))]
    runs = [r for r in runs if osp.isfile(r)]
    assert runs, f'no scalars.json under {work_dir}'
    with open(runs[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def assert_finite_losses(work_dir, iters=2):
    rows = [r for r in read_losses(work_dir) if 'loss' in r]
    assert [r['iter'] for r in rows] == list(range(1, iters + 1)), rows
    for row in rows:
        for key, value in row.items():
            if key.startswith('loss'):
                assert math.isfinite(value), (key, row)
    return rows


def write_tiny_config(path, bench, ckpt, probe_out, body):
    """A test config over the benchmark config ``bench``: the probe hook
    (backbone tensors against ``ckpt``, result in ``probe_out``), then
    ``body`` (the test's model, data and loop overrides; dedented here), then
    no validation or test, a log line per iteration and no checkpoint
    saving."""
    with open(path, 'w') as f:
        f.write(textwrap.dedent(f"""\
            _base_ = {bench!r}
            custom_imports = dict(imports=['transfer_probe'],
                                  allow_failed_imports=False)
            custom_hooks = [dict(type='TransferProbeHook',
                                 checkpoint={ckpt!r}, out={probe_out!r})]
            """) + textwrap.dedent(body) + textwrap.dedent("""\
            val_dataloader = None
            val_cfg = None
            val_evaluator = None
            test_dataloader = None
            test_cfg = None
            test_evaluator = None
            default_hooks = dict(
                logger=dict(interval=1),
                checkpoint=dict(interval=100000, save_last=False))
            """))


# --------------------------------------------------------------------------
# tiny MoCo v2 / DenseCL models, in mmpretrain and in mmmask
# --------------------------------------------------------------------------
TINY_C5 = 64  # ResNet-18 with base_channels=8: 8 * 2**3

# method -> (model type, neck type)
MMPRETRAIN_TYPES = dict(mocov2=('MoCo', 'MoCoV2Neck'),
                        densecl=('DenseCL', 'DenseCLNeck'))
MMMASK_TYPES = dict(mocov2=('MoCoV2', 'MLPProjectionNeck'),
                    densecl=('DenseCL', 'DenseProjectionNeck'))


def tiny_resnet18(**extra):
    """A ResNet-18 with 8 base channels, C5 (``TINY_C5`` channels) out."""
    return dict(type='ResNet', depth=18, stem_channels=8, base_channels=8,
                out_indices=(3, ), **extra)


def contrastive_cfg(library, method, neck, **model):
    """The model config of ``method`` ('mocov2' or 'densecl') in ``library``
    ('mmpretrain' or 'mmmask'): its model and neck types, the neck
    arguments ``neck``, the library's contrastive head at temperature 0.2
    and the model arguments ``model`` (backbone, queue_len, ...)."""
    if library == 'mmpretrain':
        model_type, neck_type = MMPRETRAIN_TYPES[method]
        head = dict(type='ContrastiveHead',
                    loss=dict(type='CrossEntropyLoss'), temperature=0.2)
    else:
        model_type, neck_type = MMMASK_TYPES[method]
        head = dict(type='InfoNCEHead', temperature=0.2)
    return dict(type=model_type, neck=dict(type=neck_type, **neck),
                head=head, **model)


def build_mmpretrain_model(cfg):
    """``cfg`` built by mmpretrain's registry and initialised (quietly).

    The scope is pinned: a default scope left by another test ('mmmask')
    would make mmpretrain's registry build mmmask's DenseCL.
    """
    from mmengine.registry import DefaultScope

    import mmpretrain.models  # noqa: F401  (registers mmpretrain's models)
    from mmmask.utils.quiet import init_weights_quietly
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    init_weights_quietly(model)
    return model


def build_mmmask_model(cfg):
    """``cfg`` built by mmmask's registry."""
    from mmengine.registry import DefaultScope

    import mmmask.models  # noqa: F401
    from mmmask.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmmask'):
        return MODELS.build(cfg)


# --------------------------------------------------------------------------
# ViT methods (CMAE, MACRL): short tools/train.py runs of the demo configs
# --------------------------------------------------------------------------
VIT_DEMO = {'cmae': 'cmae_vit-tiny_demo.py', 'macrl': 'macrl_vit-tiny_demo.py'}
VIT_LAYERS = 4  # the Feature2Pyramid of the UperNet-ViT config takes 4 maps


def pretrained_vit(base_dir, method, iters=2):
    """``(checkpoint, work_dir, data_root)`` of a ``iters``-iteration
    tools/train.py run of the tiny ``method`` demo config (4-layer, 64-wide
    ViT, 4 px patches, 32 px views), made once per test session."""
    base = osp.join(str(base_dir), 'mmmask_vit_pretrain')
    data_root = osp.join(base, 'images')
    if not osp.isdir(data_root):
        check_ok(run([sys.executable,
                      osp.join(ROOT, 'tools', 'make_demo_data.py'),
                      '--out', data_root, '--num', '8']))
    work = osp.join(base, method)
    ckpt = osp.join(work, f'iter_{iters}.pth')
    if osp.isfile(ckpt):
        return ckpt, work, data_root
    proc = run([sys.executable, osp.join(ROOT, 'tools', 'train.py'),
                osp.join(ROOT, 'configs', 'demo', VIT_DEMO[method]),
                '--work-dir', work, '--cfg-options',
                f'model.backbone.arch.num_layers={VIT_LAYERS}',
                f'train_cfg.max_iters={iters}',
                f'default_hooks.checkpoint.interval={iters}',
                'default_hooks.logger.interval=1',
                'train_dataloader.batch_size=4',
                'train_dataloader.num_workers=0',
                'train_dataloader.persistent_workers=False',
                f'train_dataloader.dataset.data_root={data_root}'],
               extra_path=ROOT)
    check_ok(proc)
    assert osp.isfile(ckpt), os.listdir(work)
    return ckpt, work, data_root


# --------------------------------------------------------------------------
# tiny training runs of mmmask configs through tools/train.py
# --------------------------------------------------------------------------
TRAIN_PY = osp.join(ROOT, 'tools', 'train.py')
DEMO_CONFIG_DIR = osp.join(ROOT, 'configs', 'demo')


def demo_images(base_dir, num=12):
    """``tools/make_demo_data.py --num num`` under ``base_dir`` (made once;
    the script leaves a complete folder alone)."""
    out = osp.join(str(base_dir), f'demo_images_{num}')
    check_ok(run([sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'),
                  '--out', out, '--num', str(num)], timeout=120))
    return out


def tiny_run_config(base, data_root, body='', batch=4, max_iters=4,
                    ckpt_interval=100000, imports=(), split=False):
    """Config text over ``base`` (a path, or a list of paths): ResNet-18
    with 8 base channels, 32 px random views (crop, colour jitter, grey, flip: they draw from the
    global RNGs), ``batch`` images per step without workers, ``max_iters``
    iterations, a log line per iteration and a checkpoint every
    ``ckpt_interval``; then ``body`` (dedented) and ``custom_imports`` of
    ``imports``. ``split=True``: the split pipeline instead (the workers
    crop, the base config's ViewAugmentDataPreprocessor augments; its
    draws come from StepRandom)."""
    bases = list(base) if isinstance(base, (list, tuple)) else [base]
    if split:
        preprocessor, view = '', """[dict(type='RandomResizedCrop', scale=32,
                     crop_ratio_range=(0.2, 1.), backend='cv2')]"""
    else:  # per-image: the base's device ops off
        preprocessor = ('\n            '
                        'data_preprocessor=dict(view_augments=[]),')
        view = """[dict(type='RandomResizedCrop', scale=32,
                     crop_ratio_range=(0.2, 1.), backend='pillow'),
                dict(type='RandomApply', prob=0.8, transforms=[
                    dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                         saturation=0.4, hue=0.1)]),
                dict(type='RandomGrayscale', prob=0.2, keep_channels=True),
                dict(type='RandomFlip', prob=0.5)]"""
    text = textwrap.dedent(f"""\
        _base_ = {bases!r}
        model = dict({preprocessor}
            queue_len=16, feat_dim=16,
            backbone=dict(stem_channels=8, base_channels=8),
            neck=dict(in_channels={TINY_C5}, hid_channels=32,
                      out_channels=16))
        view = {view}
        train_dataloader = dict(
            batch_size={batch}, num_workers=0, persistent_workers=False,
            dataset=dict(data_root={data_root!r}, pipeline=[
                dict(type='LoadImageFromFile'),
                dict(type='MultiView', num_views=2, transforms=[view]),
                dict(type='PackInputs')]))
        train_cfg = dict(max_iters={max_iters})
        param_scheduler = [dict(type='CosineAnnealingLR', T_max={max_iters},
                                by_epoch=False, begin=0, end={max_iters})]
        default_hooks = dict(logger=dict(interval=1),
                             checkpoint=dict(interval={ckpt_interval},
                                             max_keep_ckpts=-1))
        """)
    if imports:
        text += (f'custom_imports = dict(imports={list(imports)!r}, '
                 'allow_failed_imports=False)\n')
    return text + textwrap.dedent(body)


def train(config, work_dir, *args, extra_path=None, timeout=300):
    """``tools/train.py config --work-dir work_dir args`` in a subprocess."""
    return run([sys.executable, TRAIN_PY, str(config), '--work-dir',
                str(work_dir), *args], timeout=timeout, extra_path=extra_path)


def logged_losses(work_dir, key='loss'):
    """{iter: value} of ``key`` over every run logged in ``work_dir``
    (later runs overwrite earlier ones at the same iteration)."""
    out = {}
    for d in sorted(os.listdir(work_dir)):
        path = osp.join(work_dir, d, 'vis_data', 'scalars.json')
        if osp.isfile(path):
            with open(path) as f:
                for line in f:
                    row = json.loads(line) if line.strip() else {}
                    if key in row:
                        out[row['iter']] = row[key]
    return out


def one_error_line(proc, prog='train.py'):
    """The single ``PROG: error: ...`` line of a failed run (asserting there
    is exactly one and no traceback)."""
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-4000:]
    lines = [ln for ln in proc.stderr.splitlines()
             if ln.startswith(f'{prog}: error:')]
    assert len(lines) == 1, proc.stderr[-4000:]
    return lines[0]


_TRAIN_DRIVER = r'''
import contextlib, io, json, sys, traceback

from mmmask.apis import train
results = {}
for name, argv in json.loads(sys.argv[2]).items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = train.main(argv)
        except SystemExit as e:
            code = e.code
        except BaseException:
            traceback.print_exc()
            code = 'raised'
    results[name] = dict(code=code, stdout=out.getvalue(),
                         stderr=err.getvalue())
print('RESULTS ' + json.dumps(results))
'''


def train_in_one_process(argvs, extra_path=None, timeout=500):
    """``tools/train.py``'s ``main(argv)`` for each ``{name: argv}``, in turn,
    in one subprocess (the imports paid once); returns ``{name: dict(code,
    stdout, stderr)}``, each run's output captured on its own."""
    proc = run([sys.executable, '-c', _TRAIN_DRIVER, TRAIN_PY,
                json.dumps(argvs)], timeout=timeout, extra_path=extra_path)
    check_ok(proc)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULTS ')]
    assert line, proc.stdout[-3000:]
    return json.loads(line[-1][len('RESULTS '):])
