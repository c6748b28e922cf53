"""Helpers shared by the tests (imported as ``helpers``: pytest puts tests/
on ``sys.path``; session fixtures: tests/conftest.py; test hooks and
drivers run in other processes: tests/utils/).

* subprocess runs (``env``, ``run``, ``check_ok``, ``train``,
  ``train_in_one_process``), logged losses, one-line errors;
* the bundled photographs and the tiny configs over the benchmark configs
  that the transfer tests run with the probe hook
  (tests/utils/transfer_probe.py; the tiny sets: tests/transfer_sets.py);
* tiny MoCo v2 / DenseCL models built by mmpretrain and by mmmask
  (tests/test_engine/test_convert_mmpretrain.py,
  tests/test_models/test_equivalence_mmpretrain.py);
* the dist_train.sh queue-dump runs and two spawned gloo ranks.

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
from pytest import approx
from stock_check import STOCK_MMENGINE

TESTS = osp.dirname(osp.abspath(__file__))  # tests/: helpers, stock_check
ROOT = osp.dirname(TESTS)
UTILS = osp.join(TESTS, 'utils')  # test hooks and drivers, as real files

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
def env(extra_path=None, **extra_env):
    """os.environ with ``extra_path``, the repository, tests/utils/ (the
    test hooks and drivers) and tests/ (``stock_check``) before its
    PYTHONPATH, one OpenMP thread, no ``PORT`` and ``extra_env``."""
    e = dict(os.environ)
    paths = [p for p in (extra_path, ROOT, UTILS, TESTS, e.get('PYTHONPATH'))
             if p]
    e['PYTHONPATH'] = os.pathsep.join(paths)
    e['OMP_NUM_THREADS'] = '1'
    e.pop('PORT', None)
    e.update(extra_env)
    return e


def run(cmd, timeout=300, extra_path=None, **extra_env):
    """``cmd`` in the repository root with ``env(extra_path, **extra_env)``,
    output captured as text."""
    return subprocess.run(cmd, cwd=ROOT, env=env(extra_path, **extra_env),
                          timeout=timeout, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)


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


def run_probed(script, tiny_config, ckpt, tmp_path):
    """Run the downstream launcher ``script`` on ``tiny_config`` (written
    with ``write_tiny_config``, probe output ``tmp_path/probe.json``) with
    ``--pretrained ckpt``; check it succeeded and that the checkpoint went
    through mmengine's own loader and file backend. Returns (process, probe
    result, work dir)."""
    work = osp.join(str(tmp_path), 'work')
    proc = run([sys.executable, script, tiny_config, '--pretrained', ckpt,
                '--work-dir', work])
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


# --------------------------------------------------------------------------
# tiny training runs of mmmask configs through tools/train.py
# --------------------------------------------------------------------------
TRAIN_PY = osp.join(ROOT, 'tools', 'train.py')
DEMO_CONFIG_DIR = osp.join(ROOT, 'configs', 'demo')


def tiny_run_config(base, data_root, body='', batch=4, max_iters=4,
                    ckpt_interval=100000, imports=(), split=False):
    """Config text over ``base`` (a path, or a list of paths): ResNet-18
    with 8 base channels, 32 px random views (crop, colour jitter, grey,
    flip: they draw from the global RNGs), ``batch`` images per step without workers, ``max_iters``
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


def train_in_one_process(argvs, extra_path=None, timeout=500):
    """``tools/train.py``'s ``main(argv)`` for each ``{name: argv}``, in turn,
    in one subprocess (the imports paid once); returns ``{name: dict(code,
    stdout, stderr)}``, each run's output captured on its own."""
    proc = run([sys.executable, osp.join(UTILS, 'train_driver.py'),
                json.dumps(argvs)], timeout=timeout, extra_path=extra_path)
    check_ok(proc)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith('RESULTS ')]
    assert line, proc.stdout[-3000:]
    return json.loads(line[-1][len('RESULTS '):])


# --------------------------------------------------------------------------
# tools/dist_train.sh runs whose ranks dump their queues
# (tests/test_apis/test_train_tools.py, tests/test_apis/test_multinode.py)
# --------------------------------------------------------------------------
QUEUE_LEN = 64


def write_queue_dump_config(path, data_root, batch, iters):
    """The DenseCL demo config with ``DumpQueueHook``
    (tests/utils/dump_queue_hook.py), a ``QUEUE_LEN`` queue, ``batch``
    images a rank and a checkpoint after ``iters`` iterations."""
    with open(path, 'w') as f:
        f.write(textwrap.dedent(f"""\
            _base_ = [{osp.join(DEMO_CONFIG_DIR, 'densecl_r18_demo.py')!r}]
            custom_imports = dict(imports=['dump_queue_hook'],
                                  allow_failed_imports=False)
            custom_hooks = [dict(type='DumpQueueHook')]
            model = dict(queue_len={QUEUE_LEN})
            train_dataloader = dict(batch_size={batch}, num_workers=0,
                                    persistent_workers=False,
                                    dataset=dict(data_root={data_root!r}))
            train_cfg = dict(max_iters={iters})
            default_hooks = dict(logger=dict(interval=1),
                                 checkpoint=dict(interval={iters}))
            """))


def torch_load(path):
    import torch
    return torch.load(path, map_location='cpu', weights_only=True)


def check_queue_dumps(work_dir, batch, iters):
    """The two ranks' dumps in ``work_dir``: each a DDP rank of 2 whose
    every enqueue held the keys of both ranks, with identical queues and
    parameter sums. Returns rank 0's dump."""
    import torch
    dumps = [torch_load(osp.join(work_dir, f'queue_rank{r}.pt'))
             for r in (0, 1)]
    for d in dumps:
        assert d['world_size'] == 2
        assert d['wrapped'] == 'MMDistributedDataParallel'
        # each enqueue holds the keys of both ranks: 2 * batch per iteration
        assert d['ptrs'] == [(i * 2 * batch) % QUEUE_LEN
                             for i in range(1, iters + 1)]
    r0, r1 = dumps
    for name in ('queue.feats', 'queue.ptr', 'dense_queue.feats',
                 'dense_queue.ptr'):
        assert torch.equal(r0[name], r1[name]), name
    # DDP kept the online and key encoders identical on both ranks
    assert r0['param_sums'] == approx(r1['param_sums'], rel=1e-9)
    assert r0['key_param_sums'] == approx(r1['key_param_sums'], rel=1e-9)
    return r0


# --------------------------------------------------------------------------
# two gloo ranks in spawned processes
# --------------------------------------------------------------------------
def free_port():
    """A TCP port free on 127.0.0.1 now."""
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _gloo_rank(rank, port, worker, out_dir):
    import torch
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    try:
        torch.save(worker(rank), osp.join(out_dir, f'{rank}.pt'))
    finally:
        dist.destroy_process_group()


def on_two_gloo_ranks(worker, out_dir):
    """``worker(rank)`` (a module-level function) in two spawned processes
    of one gloo group; returns what each returned, in rank order (saved
    under ``out_dir``)."""
    import torch
    import torch.multiprocessing as mp
    mp.spawn(_gloo_rank, args=(free_port(), worker, str(out_dir)), nprocs=2)
    return [torch.load(osp.join(str(out_dir), f'{r}.pt')) for r in range(2)]
