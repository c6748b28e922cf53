"""Checkpoints of the masked ConvNet methods (saliency-guided MoCo v2,
MaskCo) go straight into the stock mmdet and mmseg benchmark configs.

As tests/test_transfer_mmdet.py and tests/test_transfer_mmseg.py do for
DenseCL: a ResNet-50 pretrained 2 iterations by tools/train.py with each
method's own config (64 px views of the demo images), then the VOC
detection (Faster R-CNN R50-C4) and VOC segmentation (FCN) benchmark
configs, in processes that never import mmmask: every backbone tensor
equals the checkpoint's and two iterations train.
"""
import json
import os.path as osp
import sys

import pytest
from helpers import (assert_finite_losses, check_ok, pretrained_r50, run,
                     write_probe)
from test_transfer_mmdet import (DET_CONFIGS, DET_TRAIN, coco_set,  # noqa: F401
                                 write_tiny_det_config)
from test_transfer_mmseg import (SEG_CONFIGS, SEG_TRAIN, make_seg_set,
                                 write_tiny_seg_config)

METHODS = ['saliency_mocov2', 'maskco']
DET = 'faster-rcnn_r50-c4_syncbn-24k_voc0712.py'
SEG = 'fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'


@pytest.fixture(scope='module', params=METHODS)
def method_checkpoint(request, tmp_path_factory):
    return request.param, pretrained_r50(tmp_path_factory.getbasetemp(),
                                         request.param)


def test_checkpoint_has_the_whole_backbone_and_is_plain(method_checkpoint):
    import torch
    _, ckpt = method_checkpoint
    state = torch.load(ckpt, map_location='cpu', weights_only=True)[
        'state_dict']
    assert sum(k.startswith('backbone.') for k in state) == 318


def test_detector_loads_backbone(method_checkpoint, coco_set, tmp_path):
    _, ckpt = method_checkpoint
    probe_out = str(tmp_path / 'probe.json')
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_det_config(tiny, osp.join(DET_CONFIGS, DET), coco_set,
                          probe_out, ckpt)
    work = str(tmp_path / 'work')
    proc = run([sys.executable, DET_TRAIN, tiny, '--pretrained', ckpt,
                '--work-dir', work], extra_path=write_probe(tmp_path))
    check_ok(proc)
    with open(probe_out) as f:
        probe = json.load(f)
    assert probe['mmmask_imported'] is False
    assert probe['differ'] == []
    assert probe['backbone'] + probe['shared_head'] == 318
    assert probe['shared_head'] == probe['ckpt_layer4'] > 0
    assert_finite_losses(work)


def test_segmentor_loads_backbone(method_checkpoint, tmp_path):
    _, ckpt = method_checkpoint
    data_root = str(tmp_path / 'data')
    make_seg_set(data_root, SEG)
    probe_out = str(tmp_path / 'probe.json')
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_seg_config(tiny, osp.join(SEG_CONFIGS, SEG), data_root,
                          probe_out, ckpt)
    work = str(tmp_path / 'work')
    proc = run([sys.executable, SEG_TRAIN, tiny, '--pretrained', ckpt,
                '--work-dir', work], extra_path=write_probe(tmp_path))
    check_ok(proc)
    with open(probe_out) as f:
        probe = json.load(f)
    assert probe['mmmask_imported'] is False
    assert probe['differ'] == []
    assert probe['backbone'] == probe['backbone_total'] == 318
    assert_finite_losses(work)
