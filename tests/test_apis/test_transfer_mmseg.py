"""mmmask checkpoints go straight into the stock mmseg benchmark configs.

The 2-iteration mmmask DenseCL ResNet-50 checkpoint (the ``checkpoint``
fixture of tests/conftest.py, as in tests/test_apis/test_transfer_mmdet.py)
feeds, for each config under ``configs/benchmarks/mmsegmentation/``, a run of
``tools/benchmarks/mmsegmentation/train.py`` (never imports mmmask) on a
tiny set of real photographs with drawn masks, laid out as the config's
dataset expects (VOC, Cityscapes, ADE20K): after ``init_weights`` every
backbone tensor equals the checkpoint's (probe hook), and two training
iterations give finite losses.

Test-only overrides: 64 x 64 crops of 128 x 96 images, batch 2, the
dataset's root and file lists, 2 iterations, no validation or checkpoint
saving. SyncBN stays in the config: mmengine's Runner reverts it to BN in a
run without a process group.
"""
import os
import os.path as osp
import sys

import pytest
from helpers import (PHOTOS, ROOT, assert_finite_losses, real_photos, run,
                     run_probed, write_probe, write_tiny_config)

SEG_TRAIN = osp.join(ROOT, 'tools', 'benchmarks', 'mmsegmentation',
                     'train.py')
SEG_CONFIGS = osp.join(ROOT, 'configs', 'benchmarks', 'mmsegmentation')

# config -> dataset type, (image dir, mask dir), (image suffix, mask suffix),
# extra dataset keys, label offset of the drawn objects
LAYOUTS = {
    'fcn_r50-d8_4xb4-20k_voc12aug-512x512.py': (
        'PascalVOCDataset', ('JPEGImages', 'SegmentationClass'),
        ('.jpg', '.png'), "ann_file='train.txt'", 1),
    'fcn_r50-d8_4xb2-40k_cityscapes-769x769.py': (
        'CityscapesDataset', ('leftImg8bit/train', 'gtFine/train'),
        ('_leftImg8bit.png', '_gtFine_labelTrainIds.png'), '', 11),
    'upernet_r50_4xb4-160k_ade20k-512x512.py': (
        'ADE20KDataset', ('images/training', 'annotations/training'),
        ('.jpg', '.png'), 'reduce_zero_label=True', 1),
}


def _draw_mask(shape, box, label):
    """Background 0, an ellipse of ``label`` inside ``box`` (fractions)."""
    from PIL import Image, ImageDraw
    h, w = shape
    mask = Image.new('L', (w, h), 0)
    x0, y0, x1, y1 = box
    ImageDraw.Draw(mask).ellipse([x0 * w, y0 * h, x1 * w, y1 * h],
                                 fill=label)
    return mask


def make_seg_set(root, config):
    from PIL import Image
    _, (img_dir, seg_dir), (img_sfx, seg_sfx), _, offset = LAYOUTS[config]
    os.makedirs(osp.join(root, img_dir))
    os.makedirs(osp.join(root, seg_dir))
    names = []
    for i, (name, img) in enumerate(real_photos().items()):
        Image.fromarray(img).save(osp.join(root, img_dir, name + img_sfx))
        _draw_mask(img.shape[:2], PHOTOS[name][1], offset + i).save(
            osp.join(root, seg_dir, name + seg_sfx))
        names.append(name)
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')


def write_tiny_seg_config(path, bench, data_root, probe_out, ckpt):
    config = osp.basename(bench)
    dataset, (img_dir, seg_dir), (img_sfx, seg_sfx), extra, _ = \
        LAYOUTS[config]
    suffixes = (f"img_suffix={img_sfx!r}, seg_map_suffix={seg_sfx!r}, "
                if dataset == 'CityscapesDataset' else '')
    reduce = 'reduce_zero_label=True' if 'ADE' in dataset else ''
    write_tiny_config(path, bench, ckpt, probe_out, f"""\
        crop_size = (64, 64)
        model = dict(data_preprocessor=dict(size=crop_size))
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', {reduce}),
            dict(type='RandomCrop', crop_size=crop_size),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackSegInputs')]
        train_dataloader = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            dataset=dict(_delete_=True, type={dataset!r},
                         data_root={data_root!r}, {suffixes}
                         data_prefix=dict(img_path={img_dir!r},
                                          seg_map_path={seg_dir!r}),
                         {extra + ',' if extra else ''}
                         pipeline=pipeline))
        train_cfg = dict(max_iters=2, val_interval=1000)
        """)


def run_segmentor(config, ckpt, tmp_path):
    """The benchmark ``config`` on the tiny drawn-mask set, from ``ckpt``
    (see ``helpers.run_probed``)."""
    data_root = str(tmp_path / 'data')
    make_seg_set(data_root, config)
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_seg_config(tiny, osp.join(SEG_CONFIGS, config), data_root,
                          str(tmp_path / 'probe.json'), ckpt)
    return run_probed(SEG_TRAIN, tiny, ckpt, tmp_path)


SEGMENTORS = sorted(f for f in os.listdir(SEG_CONFIGS) if f.endswith('.py'))


def test_three_segmentation_configs_exist():
    assert SEGMENTORS == sorted(LAYOUTS)


@pytest.mark.parametrize('config', SEGMENTORS)
def test_segmentor_loads_backbone_and_trains(config, checkpoint, tmp_path):
    proc, probe, work = run_segmentor(config, checkpoint, tmp_path)
    assert probe['backbone'] == probe['backbone_total'] == 318
    assert '265/265 tensors loaded' in proc.stdout + proc.stderr
    rows = assert_finite_losses(work)
    assert all('decode.loss_ce' in r and 'aux.loss_ce' in r for r in rows)


def test_deep_stem_backbone_is_refused(checkpoint, tmp_path):
    """A deep-stem backbone (the stock ResNetV1c's stem) cannot take a
    plain-stem checkpoint: the launcher names the missing stem keys instead
    of training."""
    config = 'fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'
    data_root = str(tmp_path / 'data')
    make_seg_set(data_root, config)
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_seg_config(tiny, osp.join(SEG_CONFIGS, config), data_root,
                          str(tmp_path / 'p.json'), checkpoint)
    proc = run([sys.executable, SEG_TRAIN, tiny, '--pretrained', checkpoint,
                '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                'model.backbone.deep_stem=True'],
               extra_path=write_probe(tmp_path))
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'missing' in proc.stderr and 'stem.0.weight' in proc.stderr
    assert not osp.exists(tmp_path / 'p.json')
