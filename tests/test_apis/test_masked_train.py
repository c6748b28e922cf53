"""The masked ConvNet methods train end to end, and every method config can
be browsed.

* saliency-guided MoCo v2 and MaskCo: 4 iterations of tools/train.py on the
  demo images (tiny ResNet-18, 64 px), finite logged losses, checkpoints at
  2 and 4 whose backbone weights moved and whose queue holds the keys;
* tools/visualization/browse_masks.py writes a PNG grid for every method
  config in configs/ (on real images: the demo set).
"""
import glob
import os.path as osp
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT, TINY_C5, check_ok, read_losses, run

TRAIN = osp.join(ROOT, 'tools', 'train.py')
BROWSE = osp.join(ROOT, 'tools', 'visualization', 'browse_masks.py')
METHOD_CONFIGS = sorted(glob.glob(osp.join(ROOT, 'configs', '*.py')))

# method -> (config, model overrides, views, packed keys)
TINY = {
    'saliency_mocov2': (
        'saliency_mocov2_r50.py',
        "query_mask=dict(base_size=64), hard_negative_mask=dict(base_size=64)",
        "dict(type='MultiView', num_views=2, transforms=[view])", []),
    'maskco': (
        'maskco_r50.py',
        f"mask_head=dict(in_channels={TINY_C5}, num_convs=1), "
        "use_same_image_negatives=True",
        "dict(type='GeometricMultiView', num_views=2, transforms=[view], "
        "min_overlap=0.05), dict(type='SampleOverlapRegion', "
        "num_neg_regions=2)",
        ['view_geometry', 'regions', 'region_valid', 'neg_regions']),
}
QUEUE, BATCH = 16, 4


@pytest.fixture(scope='module')
def demo_images(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('demo') / 'images')
    check_ok(run([sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'),
                  '--out', out, '--num', '16']))
    return out


def write_config(path, method, data_root):
    base, model, views, keys = TINY[method]
    with open(path, 'w') as f:
        f.write(f"""
_base_ = {osp.join(ROOT, 'configs', base)!r}
model = dict(queue_len={QUEUE}, feat_dim=16,
             backbone=dict(depth=18, stem_channels=8, base_channels=8),
             neck=dict(in_channels={TINY_C5}, hid_channels=32,
                       out_channels=16), {model})
view = [dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.2, 1.),
             backend='pillow'),
        dict(type='RandomFlip', prob=0.5)]
train_dataloader = dict(
    batch_size={BATCH}, num_workers=0, persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', with_label=False,
                 data_root={data_root!r}, pipeline=[
        dict(type='LoadImageFromFile'), {views},
        dict(type='PackInputs', algorithm_keys={keys!r})]))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=4)
param_scheduler = []
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(by_epoch=False, interval=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
""")


@pytest.mark.parametrize('method', sorted(TINY))
def test_method_trains_under_the_runner(method, demo_images, tmp_path):
    cfg = str(tmp_path / f'{method}_tiny.py')
    write_config(cfg, method, demo_images)
    work = str(tmp_path / 'work')
    check_ok(run([sys.executable, TRAIN, cfg, '--work-dir', work],
                 extra_path=ROOT))
    rows = [r for r in read_losses(work) if 'loss' in r]
    assert [r['iter'] for r in rows] == [1, 2, 3, 4]
    assert all(np.isfinite(r['loss']) and r['loss'] > 0 for r in rows)
    load = lambda p: torch.load(p, map_location='cpu',  # noqa: E731
                                weights_only=True)['state_dict']
    s2, s4 = load(osp.join(work, 'iter_2.pth')), load(osp.join(work,
                                                              'iter_4.pth'))
    moved = [k for k in s2 if k.startswith('backbone.') and
             s2[k].is_floating_point() and not torch.equal(s2[k], s4[k])]
    assert len(moved) > 20
    assert int(s4['queue.ptr']) == (4 * BATCH) % QUEUE
    # the queue holds unit-norm keys written by training
    feats = s4['queue.feats']
    assert torch.allclose(feats.norm(dim=1), torch.ones(QUEUE), atol=1e-4)
    if method == 'maskco':
        assert any(k.startswith('mask_head.') for k in s4)


def _browse_tool():
    from tools.visualization import browse_masks
    return browse_masks


@pytest.mark.parametrize('config', [osp.basename(c) for c in METHOD_CONFIGS])
def test_browse_masks_writes_a_png_for_every_method_config(config,
                                                          demo_images,
                                                          tmp_path):
    from PIL import Image
    out = str(tmp_path / 'browse')
    _browse_tool().main([osp.join(ROOT, 'configs', config), '--images',
                         demo_images, '--show-number', '2', '--output-dir',
                         out])
    png = osp.join(out, osp.splitext(config)[0] + '.png')
    img = np.asarray(Image.open(png))
    assert img.shape[0] >= 2 * 128 and img.shape[1] >= 3 * 128
    assert img.std() > 10  # real pictures, not a blank canvas
    if config.startswith('maskco'):
        # the region frames are drawn in green
        assert ((img[..., 1] == 255) & (img[..., 0] == 0)).sum() > 50


def test_browse_masks_bad_folder_is_one_line(tmp_path):
    proc = run([sys.executable, BROWSE,
                osp.join(ROOT, 'configs', 'maskco_r50.py'),
                '--images', str(tmp_path / 'nothing')], extra_path=ROOT)
    assert proc.returncode != 0
    assert 'no such folder' in proc.stderr
    assert 'Traceback' not in proc.stderr
