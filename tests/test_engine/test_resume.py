"""Exact resume after SIGKILL, atomic checkpoints, ``--resume auto`` past a
corrupt checkpoint (tools/train.py in subprocesses on the CPU).

One tiny DenseCL run (12 images, batch 4: 3 iterations per epoch, so the
checkpoints at iterations 2 and 4 are mid-epoch) with random augmentations
(numpy / Python generators) and drop-path in the backbone (torch generator)
is trained for 8 iterations without a stop. Another is SIGKILLed while it
writes iteration 6's checkpoint, then resumed with ``--resume`` (auto) from
iteration 4, and, with iteration 4's file truncated, from iteration 2; the
losses logged after the resume (each iteration's own, no smoothing) must
equal the uninterrupted run's. Both with the per-image pipeline and with the
split pipeline (crop in the workers, colour / blur / flip drawn from
``StepRandom('view_augment')`` in ViewAugmentDataPreprocessor).
"""
import os
import os.path as osp
import shutil
import signal

import pytest
import torch
from helpers import (DEMO_CONFIG_DIR, read_losses,
                     tiny_run_config, train, train_in_one_process)

ITERS, TOL = 8, 1e-6

# the test hook: tests/utils/resume_test_hooks.py


def _config(tmp_path, data, name, hook=None, split=False):
    body = '''
        model = dict(backbone=dict(drop_path_rate=0.2))
        randomness = dict(seed=3, deterministic=True)
        log_processor = dict(window_size=1)  # each iteration's own loss
        '''
    if hook:
        body += f'custom_hooks = [{hook}]\n'
    path = tmp_path / f'{name}.py'
    path.write_text(tiny_run_config(
        osp.join(DEMO_CONFIG_DIR, 'densecl_r18_demo.py'), data, body,
        max_iters=ITERS, ckpt_interval=2,
        imports=['resume_test_hooks'] if hook else (), split=split))
    return path


def _losses(work_dir):
    """{iter: loss} of the latest run in ``work_dir``."""
    return {r['iter']: r['loss'] for r in read_losses(str(work_dir))
            if 'loss' in r}


def _assert_same(resumed, reference, first):
    assert sorted(resumed) == list(range(first, ITERS + 1)), resumed
    diff = max(abs(resumed[i] - reference[i]) for i in resumed)
    assert diff <= TOL, (diff, resumed, reference)
    return diff


@pytest.fixture(scope='module', params=['per_image', 'split'])
def runs(request, tmp_path_factory, demo_images):
    """A run SIGKILLed halfway through writing iteration 6's checkpoint
    (after those of iterations 2 and 4); then, in one process, the
    uninterrupted run and ``--resume`` (auto) in two copies of the killed
    run's work dir: as it was, and with iteration 4's file truncated."""
    split = request.param == 'split'
    tmp = tmp_path_factory.mktemp('resume')
    data = demo_images
    killed = tmp / 'killed'
    cfg = _config(tmp, data, 'killed', "dict(type='KillDuringSaveHook', "
                  'at=6)', split=split)
    proc = train(cfg, killed)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    # the killed run's last words, before the copies change anything
    killed_losses = _losses(killed)
    killed_files = sorted(os.listdir(killed))

    shutil.copytree(killed, tmp / 'resume4')
    shutil.copytree(killed, tmp / 'resume2')
    latest = tmp / 'resume2' / 'iter_4.pth'
    data_bytes = latest.read_bytes()
    latest.write_bytes(data_bytes[:len(data_bytes) // 3])  # truncated

    resume = ['--resume', '--cfg-options', 'custom_hooks=[]']
    results = train_in_one_process(dict(
        full=[str(_config(tmp, data, 'full', split=split)), '--work-dir',
              str(tmp / 'full')],
        resume4=[str(cfg), '--work-dir', str(tmp / 'resume4')] + resume,
        resume2=[str(cfg), '--work-dir', str(tmp / 'resume2')] + resume))
    for name, result in results.items():
        assert result['code'] == 0, (name, result['stderr'][-3000:])
    return dict(tmp=tmp, killed=killed, killed_losses=killed_losses,
                killed_files=killed_files, truncated=latest,
                full=_losses(tmp / 'full'), results=results)


def test_killed_run_trained_like_the_uninterrupted_one(runs):
    full = runs['full']
    assert sorted(full) == list(range(1, ITERS + 1))
    assert len(set(full.values())) == ITERS  # a real, changing loss
    killed = runs['killed_losses']
    assert sorted(killed) == list(range(1, 7))
    assert max(abs(killed[i] - full[i]) for i in killed) <= TOL


def test_kill_while_saving_leaves_a_loadable_latest_checkpoint(runs):
    work = runs['killed']
    names = runs['killed_files']
    # the half-written file is a hidden temporary, never iter_6.pth
    assert 'iter_6.pth' not in names
    partial = [n for n in names if n.startswith('.iter_6.pth.')]
    assert len(partial) == 1 and partial[0].endswith('.tmp')
    assert 0 < os.path.getsize(work / partial[0]) < \
        os.path.getsize(work / 'iter_4.pth')
    with open(work / 'last_checkpoint') as f:
        latest = f.read().strip()
    assert latest == str(work / 'iter_4.pth')
    ckpt = torch.load(latest, weights_only=True)  # complete and loadable
    assert ckpt['meta']['iter'] == 4
    # what ExactResumeHook stores: the position in the data and the states
    assert ckpt['data_state'] == dict(consumed_batches=4,
                                      batches_per_epoch=3)
    assert len(ckpt['rng_state']) == 1
    assert set(ckpt['rng_state'][0]) >= {'python', 'numpy', 'torch'}


def _output(runs, name):
    result = runs['results'][name]
    return result['stdout'] + result['stderr']


def test_sigkill_then_resume_auto_is_exact(runs):
    out = _output(runs, 'resume4')
    assert 'resumed epoch: 0, iter: 4' in out
    # iteration 4 is batch 1 of epoch 1 (3 batches per epoch): no replay
    assert 'data resumes after batch 1 of 3 of epoch 1' in out
    _assert_same(_losses(runs['tmp'] / 'resume4'), runs['full'], first=5)


def test_resume_auto_skips_a_corrupt_latest_checkpoint(runs):
    out = _output(runs, 'resume2')
    assert f"skipping checkpoint {runs['truncated']}" in out
    assert 'resumed epoch: 0, iter: 2' in out
    assert 'data resumes after batch 2 of 3 of epoch 0' in out
    _assert_same(_losses(runs['tmp'] / 'resume2'), runs['full'], first=3)


def test_rng_state_round_trip_through_a_weights_only_file(tmp_path):
    import random

    import numpy as np

    from mmmask.engine.hooks.exact_resume import get_rng_state, set_rng_state

    def draws():
        return (random.random(), random.gauss(0, 1), float(np.random.rand()),
                float(np.random.randn()), torch.rand(3).tolist())

    random.gauss(0, 1)  # leaves a cached Gaussian in Python's state
    np.random.randn()
    path = tmp_path / 'rng.pth'
    torch.save(get_rng_state(), path)
    expected = draws()
    assert draws() != expected  # the generators moved on
    set_rng_state(torch.load(path, weights_only=True))
    assert draws() == expected


def test_load_from_is_not_a_resume():
    """A checkpoint given by load_from (fine-tuning, iteration 0) keeps the
    fresh run's data order and generators."""
    from types import SimpleNamespace

    import numpy as np

    from mmmask.engine.hooks import ExactResumeHook
    from mmmask.engine.hooks.exact_resume import get_rng_state

    np.random.seed(1)
    saved = get_rng_state()
    np.random.seed(2)
    expected = np.random.get_state()[1].copy()
    hook = ExactResumeHook()
    loop = SimpleNamespace(dataloader_iterator='untouched')
    runner = SimpleNamespace(iter=0, train_loop=loop)
    hook.after_load_checkpoint(runner, dict(
        rng_state=[saved],
        data_state=dict(consumed_batches=4, batches_per_epoch=3)))
    hook.before_train_epoch(runner)
    assert loop.dataloader_iterator == 'untouched'
    assert np.array_equal(np.random.get_state()[1], expected)
