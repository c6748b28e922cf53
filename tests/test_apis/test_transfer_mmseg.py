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
from helpers import assert_finite_losses, run
from transfer_sets import (LAYOUTS, SEG_CONFIGS, SEG_TRAIN, make_seg_set,
                           run_segmentor, write_tiny_seg_config)

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
                'model.backbone.deep_stem=True'])
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert 'missing' in proc.stderr and 'stem.0.weight' in proc.stderr
    assert not osp.exists(tmp_path / 'p.json')
