"""A bad ``load_from`` / ``--resume`` checkpoint ends ``tools/train.py``
with one ``train.py: error:`` line naming the file and what is wrong: a
truncated file, one holding a global outside the allow-list, one whose
tensors do not fit the model (a wrong shape, another architecture);
``load_cfg = dict(allow_partial=True)`` loads the tensors that fit on
purpose."""
import fractions
import glob
import os.path as osp

import pytest
import torch
from helpers import (DEMO_CONFIG_DIR, check_ok, train,
                     tiny_run_config, train_in_one_process)


@pytest.fixture(scope='module')
def results(tmp_path_factory, demo_images):
    tmp = tmp_path_factory.mktemp('bad_checkpoint')
    data = demo_images
    config = tmp / 'tiny.py'
    config.write_text(tiny_run_config(
        osp.join(DEMO_CONFIG_DIR, 'mocov2_r18_demo.py'), data, max_iters=1,
        ckpt_interval=1))
    check_ok(train(config, tmp / 'good'))
    good = torch.load(tmp / 'good' / 'iter_1.pth', weights_only=True)
    files = {}

    def save(name, ckpt):
        files[name] = str(tmp / f'{name}.pth')
        torch.save(ckpt, files[name])

    raw = open(tmp / 'good' / 'iter_1.pth', 'rb').read()
    files['truncated'] = str(tmp / 'truncated.pth')
    with open(files['truncated'], 'wb') as f:
        f.write(raw[:len(raw) // 2])
    save('unsafe', dict(good, meta=dict(good['meta'],
                                        note=fractions.Fraction(1, 3))))
    shape = dict(good['state_dict'])
    shape['backbone.conv1.weight'] = torch.zeros(8, 3, 3, 3)
    save('shape', dict(good, state_dict=shape))
    other = {k: v for k, v in good['state_dict'].items()
             if not k.startswith('neck.')}
    other['neck.fc.weight'] = torch.zeros(4, 4)
    save('other_arch', dict(good, state_dict=other))

    def load_from(name, *extra, work=None):
        return [str(config), '--work-dir', str(tmp / f'w_{work or name}'),
                '--cfg-options', f'load_from={files[name]}', *extra]

    def resume(name):
        return [str(config), '--work-dir', str(tmp / f'r_{name}'),
                '--resume', files[name]]

    argvs = dict(
        load_truncated=load_from('truncated'),
        resume_truncated=resume('truncated'),
        load_unsafe=load_from('unsafe'), resume_unsafe=resume('unsafe'),
        load_shape=load_from('shape'), load_other=load_from('other_arch'),
        partial=load_from('shape', 'load_cfg.allow_partial=True',
                          work='partial'))
    return files, train_in_one_process(argvs), tmp


def _error_line(result):
    assert result['code'] not in (0, None, 'raised'), result['stderr'][-3000:]
    assert 'Traceback' not in result['stderr'], result['stderr'][-3000:]
    lines = [ln for ln in result['stderr'].splitlines()
             if ln.startswith('train.py: error:')]
    assert len(lines) == 1, result['stderr'][-3000:]
    return lines[0]


@pytest.mark.parametrize('run', ['load_truncated', 'resume_truncated'])
def test_truncated_checkpoint_is_one_line(results, run):
    files, out, _ = results
    line = _error_line(out[run])
    assert files['truncated'] in line and 'cannot be read' in line
    assert 'truncated' in line


@pytest.mark.parametrize('run', ['load_unsafe', 'resume_unsafe'])
def test_unsafe_checkpoint_is_one_line(results, run):
    files, out, _ = results
    line = _error_line(out[run])
    assert files['unsafe'] in line and 'refused' in line
    assert 'fractions.Fraction' in line


def test_wrong_shape_is_an_error_naming_the_key(results):
    files, out, _ = results
    line = _error_line(out['load_shape'])
    assert files['shape'] in line and 'does not fit the model' in line
    assert 'backbone.conv1.weight (8, 3, 3, 3) in checkpoint vs ' \
        '(8, 3, 7, 7) in model' in line
    assert 'load_cfg = dict(allow_partial=True)' in line


def test_other_architecture_is_an_error_naming_the_keys(results):
    files, out, _ = results
    line = _error_line(out['load_other'])
    assert files['other_arch'] in line
    assert 'missing' in line and 'neck.mlp.' in line
    assert 'unexpected (1): neck.fc.weight' in line


def test_allow_partial_loads_what_fits(results):
    files, out, tmp = results
    result = out['partial']
    assert result['code'] == 0, result['stderr'][-3000:]
    log = ''.join(open(p).read() for p in glob.glob(
        str(tmp / 'w_partial' / '*' / '*.log')))
    assert 'load_cfg.allow_partial' in log
    assert 'backbone.conv1.weight' in log
