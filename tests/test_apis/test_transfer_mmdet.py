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

The tiny sets and configs: tests/transfer_sets.py; the ``checkpoint`` and
``coco_set`` fixtures: tests/conftest.py.
"""
import os
import os.path as osp
import sys

import pytest
from helpers import assert_finite_losses, run
from transfer_sets import DET_CONFIGS, DET_TRAIN, run_detector

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
