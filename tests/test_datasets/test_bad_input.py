"""Bad input ends a run with one clear line (or is skipped on request):
corrupt images, NaN losses, an empty dataset, a dataset smaller than the
batch, a neck that does not fit the backbone; and image loading, in this
process, names the file it fails on.

The runs go through ``tools/train.py``'s ``main`` (the code behind the
command line), several in one subprocess to pay the imports once; each
case's exit status and output are captured separately.
"""
import math
import os
import os.path as osp
import shutil

import numpy as np
import pytest
import torch
from helpers import (DEMO_CONFIG_DIR, logged_losses, tiny_run_config,
                     train_in_one_process)
from PIL import Image

from mmmask.datasets.transforms import CorruptImageError, LoadImageFromFile

# the NaN head: tests/utils/nan_head.py
MOCO = osp.join(DEMO_CONFIG_DIR, 'mocov2_r18_demo.py')


def _error_line(result):
    """The single ``train.py: error:`` line of a failed case."""
    assert result['code'] == 1, result['stderr'][-3000:]
    err = result['stderr']
    assert 'Traceback' not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith('train.py: error:')]
    assert len(lines) == 1, err[-3000:]
    return lines[0]


@pytest.fixture(scope='module')
def cases(tmp_path_factory, demo_images):
    tmp = tmp_path_factory.mktemp('bad_input')
    data = demo_images
    # a copy of the images with one JPEG truncated
    bad_data = str(tmp / 'images_bad')
    shutil.copytree(data, bad_data)
    bad_file = sorted(
        osp.join(d, f) for d, _, fs in os.walk(bad_data) for f in fs
        if f.endswith('.jpg'))[0]
    with open(bad_file, 'rb') as f:
        head = f.read()
    with open(bad_file, 'wb') as f:
        f.write(head[:len(head) // 2])
    empty = tmp / 'empty'
    empty.mkdir()

    def cfg(name, data_root, body='', **kw):
        path = tmp / f'{name}.py'
        path.write_text(tiny_run_config(MOCO, data_root, body, **kw))
        return str(path)

    nan_body = ("model['head'] = dict(type='NaNAtCallHead', nan_at=2, "
                'temperature=0.2)\n')
    skip_images = ("train_dataloader['dataset']['pipeline'][0]"
                   "['skip_bad_images'] = True\n")
    work = lambda name: ['--work-dir', str(tmp / 'work' / name)]  # noqa
    argvs = {
        'corrupt': [cfg('corrupt', bad_data, max_iters=3)] + work('corrupt'),
        'corrupt_skip': [cfg('corrupt_skip', bad_data, skip_images,
                             max_iters=3)] + work('corrupt_skip'),
        'nan': [cfg('nan', data, nan_body, imports=['nan_head'],
                    max_iters=3)] + work('nan'),
        'nan_skip': [cfg('nan_skip', data, nan_body + (
            'custom_hooks = [dict(type="NonFiniteLossHook", action="skip")]'
            '\n'), imports=['nan_head'], max_iters=3, ckpt_interval=1)]
        + work('nan_skip'),
        'empty': [cfg('empty', str(empty))] + work('empty'),
        'small': [cfg('small', data, batch=16)] + work('small'),
        'channels': [cfg('channels', data, "model['neck']['in_channels'] = "
                         '128\n')] + work('channels'),
        'mask_ratio': [cfg('mask_ratio', data, (
            "train_dataloader['dataset']['pipeline'].insert(1, dict("
            "type='GenerateMask', generator=dict(type='RandomPatchMask', "
            "input_size=4, mask_ratio=1.2)))\n"))] + work('mask_ratio'),
    }
    results = train_in_one_process(argvs)
    return dict(results=results, bad_file=bad_file, tmp=tmp, data=data,
                empty=str(empty))


def test_corrupt_image_is_an_error_naming_the_file(cases):
    line = _error_line(cases['results']['corrupt'])
    assert line == ('train.py: error: JPEG image is truncated (no '
                    f'end-of-image marker): {cases["bad_file"]}')


def test_corrupt_image_skipped_with_a_counted_warning(cases):
    result = cases['results']['corrupt_skip']
    assert result['code'] == 0, result['stderr'][-3000:]
    out = result['stdout'] + result['stderr']
    warnings = [ln for ln in out.splitlines()
                if 'LoadImageFromFile: skipped a bad image' in ln]
    # 12 images, 3 batches of 4: the bad one is met once in the epoch
    assert len(warnings) == 1, warnings
    assert '(1 so far by this loader)' in warnings[0]
    assert cases['bad_file'] in warnings[0]
    losses = logged_losses(str(cases['tmp'] / 'work' / 'corrupt_skip'))
    assert sorted(losses) == [1, 2, 3]
    assert all(math.isfinite(v) for v in losses.values())


def test_nan_loss_stops_naming_iteration_and_terms(cases):
    line = _error_line(cases['results']['nan'])
    assert line.startswith('train.py: error: non-finite loss at iteration 2: '
                           'loss_global=nan; training stopped'), line
    work = cases['tmp'] / 'work' / 'nan'
    assert sorted(logged_losses(str(work))) == [1]


def test_nan_loss_step_skipped_when_asked(cases):
    result = cases['results']['nan_skip']
    assert result['code'] == 0, result['stderr'][-3000:]
    out = result['stdout'] + result['stderr']
    assert ('NonFiniteLossHook: skipped the step of iteration 2 '
            '(loss_global=nan); 1 skipped so far') in out
    work = cases['tmp'] / 'work' / 'nan_skip'
    ckpts = [torch.load(str(work / f'iter_{i}.pth'), weights_only=True)
             ['state_dict'] for i in (1, 2, 3)]
    online = [k for k in ckpts[0] if k.startswith(('backbone.', 'neck.'))
              and ckpts[0][k].is_floating_point()
              and 'running' not in k]
    assert online
    # iteration 2 changed no online weight and enqueued no key ...
    for k in online:
        assert torch.equal(ckpts[0][k], ckpts[1][k]), k
    assert int(ckpts[1]['queue.ptr']) == int(ckpts[0]['queue.ptr']) == 4
    # ... iteration 3 trained again, and everything stayed finite
    assert any(not torch.equal(ckpts[1][k], ckpts[2][k]) for k in online)
    assert int(ckpts[2]['queue.ptr']) == 8 % 16  # queue_len 16
    for sd in ckpts:
        assert all(torch.isfinite(v).all() for v in sd.values()
                   if v.is_floating_point())


def test_empty_dataset_is_one_line(cases):
    line = _error_line(cases['results']['empty'])
    assert line.startswith('train.py: error: the train dataset is empty: '
                           'Found 0 files'), line
    assert cases['empty'] in line


def test_dataset_smaller_than_batch_is_one_line(cases):
    line = _error_line(cases['results']['small'])
    assert line == (
        'train.py: error: the train dataset has 12 samples, fewer than the '
        'batch size 16 with drop_last=True, so no batch can be made '
        f"(CustomDataset at {cases['data']!r}): lower "
        'train_dataloader.batch_size or set drop_last=False')


def test_channel_mismatch_is_one_line(cases):
    line = _error_line(cases['results']['channels'])
    assert line == (
        'train.py: error: MLPProjectionNeck has in_channels=128 but the '
        'backbone gives a map of shape (4, 64, 1, 1); set the neck\'s '
        'in_channels to the backbone\'s output channels')


def test_mask_ratio_outside_its_range_is_one_line(cases):
    line = _error_line(cases['results']['mask_ratio'])
    assert line.startswith('train.py: error: ')
    assert line.endswith('mask_ratio must be in [0, 1), got 1.2'), line


# --------------------------------------------------------------------------
# LoadImageFromFile in this process
# --------------------------------------------------------------------------
def _real_image(path):
    from sklearn.datasets import load_sample_images
    img = load_sample_images().images[0][:64, :64]
    Image.fromarray(img).save(path, quality=90)
    return img


def test_loads_a_real_image(tmp_path):
    path = tmp_path / 'china.jpg'
    img = _real_image(path)
    out = LoadImageFromFile()(dict(img_path=str(path)))
    assert out['img'].shape == img.shape
    # BGR, as mmcv loads it; JPEG is lossy
    assert np.abs(out['img'][..., ::-1].astype(int) - img).mean() < 8


@pytest.mark.parametrize('damage', ['garbage', 'truncated', 'empty'])
def test_corrupt_image_error_names_the_file(tmp_path, damage):
    path = tmp_path / f'{damage}.jpg'
    _real_image(path)
    data = path.read_bytes()
    if damage == 'garbage':
        path.write_bytes(b'not an image at all' * 10)
    elif damage == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    else:
        path.write_bytes(b'')
    with pytest.raises(CorruptImageError) as info:
        LoadImageFromFile()(dict(img_path=str(path)))
    assert str(path) in str(info.value)


def test_missing_image_names_the_file(tmp_path):
    path = tmp_path / 'nope.png'
    with pytest.raises(FileNotFoundError, match='nope.png'):
        LoadImageFromFile()(dict(img_path=str(path)))
