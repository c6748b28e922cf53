"""Session fixtures shared by the tests: each folder of images and each
pretrained checkpoint is made once per session, under pytest's session
temp dir (helper functions: tests/helpers.py; test hooks and drivers:
tests/utils/)."""
import functools
import os
import os.path as osp
import sys
import textwrap

import pytest
from helpers import DEMO_CONFIG_DIR, ROOT, VIT_DEMO, VIT_LAYERS, check_ok, run


def make_demo_images(out, num):
    """``tools/make_demo_data.py --out out --num num`` (the script leaves a
    complete folder alone)."""
    check_ok(run([sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'),
                  '--out', str(out), '--num', str(num)], timeout=120))
    return str(out)


@pytest.fixture(scope='session')
def demo_images(tmp_path_factory):
    """12 demo images (photographs and digits)."""
    return make_demo_images(tmp_path_factory.mktemp('demo_images_12'), 12)


@pytest.fixture(scope='session')
def demo_data(tmp_path_factory):
    """40 demo images (tests/test_apis/: train tools, multinode)."""
    return make_demo_images(tmp_path_factory.mktemp('demo_data') / 'images',
                            40)


# method -> (config, model overrides, views in the pipeline, packed keys) of
# the 2-iteration ResNet-50 pretraining runs whose checkpoints the transfer
# tests load (64 px views of the demo images, batch 2).
_R50_RUNS = {
    'densecl': (osp.join(DEMO_CONFIG_DIR, 'densecl_r18_demo.py'),
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


def _train_r50(work, method, dist_gpus):
    """tools/train.py (with ``dist_gpus``: ``tools/dist_train.sh CONFIG
    dist_gpus``, NCCL on CUDA) for 2 iterations of ``method`` (a key of
    ``_R50_RUNS``) in ``work``; returns the checkpoint's path."""
    base, model, views, keys = _R50_RUNS[method]
    ckpt = osp.join(work, 'iter_2.pth')
    data_root = make_demo_images(osp.join(work, 'images'), 8)
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


@pytest.fixture(scope='session')
def pretrained_r50(tmp_path_factory):
    """``pretrained_r50(method='densecl', dist_gpus=None)``: path of a
    2-iteration mmmask ResNet-50 checkpoint of ``method`` trained by
    tools/train.py (with ``dist_gpus``: by tools/dist_train.sh)."""
    @functools.lru_cache(maxsize=None)
    def make(method='densecl', dist_gpus=None):
        work = tmp_path_factory.mktemp(
            f'mmmask_{method}_r50_pretrain' +
            (f'_dist{dist_gpus}' if dist_gpus else ''))
        return _train_r50(str(work), method, dist_gpus)
    return make


@pytest.fixture(scope='session')
def coco_set(tmp_path_factory):
    """A tiny COCO-format detection set of the bundled photographs
    (tests/transfer_sets.py)."""
    from transfer_sets import make_coco_set
    return make_coco_set(tmp_path_factory.mktemp('tiny_coco'))


@pytest.fixture(scope='session')
def checkpoint(pretrained_r50):
    """The 2-iteration mmmask DenseCL ResNet-50 checkpoint
    (tests/test_apis/test_transfer_mmdet.py, test_transfer_mmseg.py)."""
    return pretrained_r50('densecl')


def _train_vit(work, data_root, method, iters=2):
    """A ``iters``-iteration tools/train.py run of the tiny ``method`` demo
    config (4-layer, 64-wide ViT, 4 px patches, 32 px views) in ``work``."""
    ckpt = osp.join(work, f'iter_{iters}.pth')
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
    return ckpt


@pytest.fixture(scope='session')
def pretrained_vit(tmp_path_factory):
    """``pretrained_vit(method)``: ``(checkpoint, work_dir, data_root)`` of
    a 2-iteration run of the tiny CMAE or MACRL demo config."""
    base = tmp_path_factory.mktemp('mmmask_vit_pretrain')
    data_root = make_demo_images(base / 'images', 8)

    @functools.lru_cache(maxsize=None)
    def make(method):
        work = str(base / method)
        return _train_vit(work, data_root, method), work, data_root
    return make
