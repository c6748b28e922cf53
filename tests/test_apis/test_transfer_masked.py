"""Checkpoints of the masked ConvNet methods (saliency-guided MoCo v2,
MaskCo) go straight into the stock mmdet and mmseg benchmark configs.

As tests/test_apis/test_transfer_mmdet.py and
tests/test_apis/test_transfer_mmseg.py do for DenseCL: a ResNet-50 pretrained 2 iterations by tools/train.py with each
method's own config (64 px views of the demo images), then the VOC
detection (Faster R-CNN R50-C4) and VOC segmentation (FCN) benchmark
configs, in processes that never import mmmask: every backbone tensor
equals the checkpoint's and two iterations train.
"""
import pytest
from helpers import assert_finite_losses
from transfer_sets import run_detector, run_segmentor

METHODS = ['saliency_mocov2', 'maskco']
DET = 'faster-rcnn_r50-c4_syncbn-24k_voc0712.py'
SEG = 'fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'


@pytest.fixture(scope='module', params=METHODS)
def method_checkpoint(request, pretrained_r50):
    return request.param, pretrained_r50(request.param)


def test_checkpoint_has_the_whole_backbone_and_is_plain(method_checkpoint):
    import torch
    _, ckpt = method_checkpoint
    state = torch.load(ckpt, map_location='cpu', weights_only=True)[
        'state_dict']
    assert sum(k.startswith('backbone.') for k in state) == 318


def test_detector_loads_backbone(method_checkpoint, coco_set, tmp_path):
    _, probe, work = run_detector(DET, method_checkpoint[1], coco_set,
                                  tmp_path)
    # res2-res4 in the backbone, res5 in the shared head
    assert probe['backbone'] + probe['shared_head'] == 318
    assert probe['shared_head'] == probe['ckpt_layer4'] > 0
    assert_finite_losses(work)


def test_segmentor_loads_backbone(method_checkpoint, tmp_path):
    _, probe, work = run_segmentor(SEG, method_checkpoint[1], tmp_path)
    assert probe['backbone'] == probe['backbone_total'] == 318
    assert_finite_losses(work)
