"""mmmask checkpoints go straight into the stock mmdet benchmark configs.

A ResNet-50 DenseCL is pretrained by mmmask for 2 iterations (64 px views,
queue 8) -> ``iter_2.pth``. Then, for each config under
``configs/benchmarks/mmdetection/``, ``tools/benchmarks/mmdetection/train.py``
(a process that never imports mmmask) fine-tunes on a tiny COCO-format set
of real photographs (scikit-image) with hand-placed boxes and polygon masks:

* a probe hook, run after ``init_weights``, checks that **every backbone
  tensor** of the detector (and every tensor of the C4 shared head's res5,
  from ``backbone.layer4``) equals the checkpoint's, and that mmmask is not
  imported;
* two training iterations give finite losses.

What the test overrides ("shrinking", only here): 128 x 96 images,
batch 2, the dataset (the tiny COCO set instead of VOC / COCO), for the
R-CNNs 16 proposals and 8 sampled RoIs per image, 2 iterations, no
validation, no checkpoint saving. Depth, strides, norm layers, heads and
init are the configs' own: SyncBN needs no override, because mmengine's
Runner turns SyncBN into BN when it trains without a process group (it
logs "all SyncBatchNorm (SyncBN) layers ... reverted").

Helpers shared with tests/test_apis/test_transfer_mmseg.py (``pretrained_r50``,
``run``, ...) live in tests/helpers.py, the ``checkpoint`` fixture in
tests/conftest.py.
"""
import json
import math
import os
import os.path as osp
import sys

import pytest
from helpers import (IMAGE_SIZE, PHOTOS, ROOT, assert_finite_losses,
                     real_photos, run, run_probed, write_tiny_config)

DET_TRAIN = osp.join(ROOT, 'tools', 'benchmarks', 'mmdetection', 'train.py')
DET_CONFIGS = osp.join(ROOT, 'configs', 'benchmarks', 'mmdetection')
CLASSES = ('person', 'cat', 'cup', 'rocket')


# --------------------------------------------------------------------------
# the tiny COCO-format detection set
# --------------------------------------------------------------------------
def _polygon(box):
    """An octagon inscribed in ``box`` (a drawn instance mask)."""
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, \
        (y1 - y0) / 2
    pts = []
    for i in range(8):
        a = 2 * math.pi * i / 8
        pts += [cx + rx * math.cos(a), cy + ry * math.sin(a)]
    return [round(p, 1) for p in pts]


@pytest.fixture(scope='module')
def coco_set(tmp_path_factory):
    from PIL import Image
    root = tmp_path_factory.mktemp('tiny_coco')
    os.makedirs(root / 'images')
    w, h = IMAGE_SIZE
    images, annotations = [], []
    for i, (name, img) in enumerate(real_photos().items(), start=1):
        Image.fromarray(img).save(root / 'images' / f'{name}.jpg')
        images.append(dict(id=i, file_name=f'{name}.jpg', width=w, height=h))
        cls, (fx0, fy0, fx1, fy1) = PHOTOS[name]
        box = (fx0 * w, fy0 * h, fx1 * w, fy1 * h)
        annotations.append(dict(
            id=i, image_id=i, category_id=CLASSES.index(cls) + 1,
            bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
            area=(box[2] - box[0]) * (box[3] - box[1]), iscrowd=0,
            segmentation=[_polygon(box)]))
    categories = [dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)]
    with open(root / 'train.json', 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=categories), f)
    return str(root)


def _detector_overrides(name):
    """Model overrides of the test (fewer proposals and sampled RoIs: the
    stock 2000 / 512 make the res5 RoI head slow on the CPU), whether the
    config has masks and whether its loop is iteration-based."""
    rcnn = ('train_cfg=dict(rpn_proposal=dict(nms_pre=100, max_per_img=16),'
            ' rcnn=dict(sampler=dict(num=8)))')
    if name.startswith('faster-rcnn_r50-c4'):
        return f'roi_head=dict(), {rcnn}', False, True
    if name.startswith('mask-rcnn'):
        return rcnn, True, False
    return '', False, False


def write_tiny_det_config(path, bench, coco_root, probe_out, ckpt):
    name = osp.basename(bench)
    model, with_mask, by_iter = _detector_overrides(name)
    loop = ("dict(max_iters=2, val_interval=1000)" if by_iter else
            "dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=1, "
            "val_interval=1000)")
    sampler = ("dict(type='InfiniteSampler', shuffle=True)" if by_iter else
               "dict(type='DefaultSampler', shuffle=True)")
    write_tiny_config(path, bench, ckpt, probe_out, f"""\
        model = dict({model})
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True,
                 with_mask={with_mask}),
            dict(type='Resize', scale={IMAGE_SIZE}, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs')]
        train_dataloader = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            sampler={sampler},
            dataset=dict(_delete_=True, type='CocoDataset',
                         data_root={coco_root!r},
                         ann_file='train.json',
                         data_prefix=dict(img='images/'),
                         metainfo=dict(classes={CLASSES!r}),
                         filter_cfg=dict(filter_empty_gt=True),
                         pipeline=pipeline))
        train_cfg = {loop}
        """)


def run_detector(config, ckpt, coco_root, tmp_path):
    """The benchmark ``config`` on the tiny COCO-style set, from ``ckpt``
    (see ``helpers.run_probed``)."""
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_det_config(tiny, osp.join(DET_CONFIGS, config), coco_root,
                          str(tmp_path / 'probe.json'), ckpt)
    return run_probed(DET_TRAIN, tiny, ckpt, tmp_path)


DETECTORS = sorted(f for f in os.listdir(DET_CONFIGS) if f.endswith('.py'))


def test_three_detector_configs_exist():
    assert DETECTORS == [
        'faster-rcnn_r50-c4_syncbn-24k_voc0712.py',
        'mask-rcnn_r50_fpn_syncbn-1x_coco.py',
        'retinanet_r50_fpn_syncbn-1x_coco.py']


def test_checkpoint_is_plain(checkpoint):
    import torch
    ckpt = torch.load(checkpoint, map_location='cpu', weights_only=True)
    keys = [k for k in ckpt['state_dict'] if k.startswith('backbone.')]
    assert len(keys) == 318  # ResNet-50 incl. num_batches_tracked


@pytest.mark.parametrize('config', DETECTORS)
def test_detector_loads_backbone_and_trains(config, checkpoint, coco_set,
                                            tmp_path):
    proc, probe, work = run_detector(config, checkpoint, coco_set, tmp_path)
    if config.startswith('faster-rcnn_r50-c4'):
        # res2-res4 in the backbone, res5 in the shared head
        assert probe['backbone'] == 318 - probe['ckpt_layer4']
        assert probe['shared_head'] == probe['ckpt_layer4'] > 0
    else:
        assert probe['backbone'] == probe['backbone_total'] == 318
    # the pre-flight report of the launcher
    assert 'tensors loaded from' in proc.stdout + proc.stderr
    assert_finite_losses(work)


def test_missing_pretrained_is_a_clear_error(tmp_path):
    bench = osp.join(DET_CONFIGS, 'retinanet_r50_fpn_syncbn-1x_coco.py')
    proc = run([sys.executable, DET_TRAIN, bench, '--work-dir',
                str(tmp_path)])
    assert proc.returncode == 2
    assert 'no pretrained checkpoint' in proc.stderr
