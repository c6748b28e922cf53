"""End-to-end tests of tools/train.py, tools/dist_train.sh and
tools/make_demo_data.py: real (tiny) training runs in subprocesses on the CPU.

* each demo config trains 4 iterations and writes checkpoints; ``--resume``
  restores the model (queues, key encoder), optimizer and iteration, and
  training goes on at iteration 5;
* ``tools/dist_train.sh CONFIG 2`` trains DenseCL in two gloo processes whose
  queues end up identical and hold the keys of both ranks;
* command-line mistakes end with one clear error line.
"""
import json
import os
import os.path as osp
import sys

import pytest
from helpers import (QUEUE_LEN, ROOT, UTILS, check_ok, check_queue_dumps, run,
                     torch_load, write_queue_dump_config)

TRAIN = osp.join(ROOT, 'tools', 'train.py')
DEMO_CONFIGS = {
    'densecl': osp.join(ROOT, 'configs', 'demo', 'densecl_r18_demo.py'),
    'mocov2': osp.join(ROOT, 'configs', 'demo', 'mocov2_r18_demo.py'),
}


def _train_options(data_root, max_iters, batch=8):
    return [
        f'train_cfg.max_iters={max_iters}',
        'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1',
        f'train_dataloader.batch_size={batch}',
        'train_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False',
        f'train_dataloader.dataset.data_root={data_root}',
        f'model.queue_len={QUEUE_LEN}',
    ]


def _scalars(run_dir):
    with open(osp.join(run_dir, 'vis_data', 'scalars.json')) as f:
        return [json.loads(line) for line in f if line.strip()]


def _runs_with_scalars(work_dir):
    """Timestamped run folders of ``work_dir`` that logged scalars, oldest
    first."""
    return sorted(
        osp.join(work_dir, d) for d in os.listdir(work_dir)
        if osp.isfile(osp.join(work_dir, d, 'vis_data', 'scalars.json')))


# --------------------------------------------------------------------------
# make_demo_data.py
# --------------------------------------------------------------------------
def test_make_demo_data_is_real_deterministic_and_idempotent(demo_data,
                                                             tmp_path):
    from PIL import Image

    files = sorted(
        osp.relpath(osp.join(d, f), demo_data)
        for d, _, fs in os.walk(demo_data) for f in fs)
    assert len(files) == 40
    subdirs = {f.split(os.sep)[0] for f in files}
    assert subdirs == {'photos', 'digits'}
    # photographs from both packages are there
    names = {osp.basename(f).rsplit('_', 1)[0] for f in files
             if f.startswith('photos')}
    assert {'china', 'flower'} <= names
    assert 'astronaut' in names
    for f in files[:5] + files[-5:]:
        with Image.open(osp.join(demo_data, f)) as img:
            assert img.mode == 'RGB' and min(img.size) >= 64

    # the same call again writes nothing; another folder gets equal bytes
    script = osp.join(ROOT, 'tools', 'make_demo_data.py')
    again = run([sys.executable, script, '--out', demo_data, '--num', '40'])
    check_ok(again)
    assert 'nothing to do' in again.stdout
    other = str(tmp_path / 'again')
    check_ok(run([sys.executable, script, '--out', other, '--num', '40']))
    for f in files:
        with open(osp.join(demo_data, f), 'rb') as a, \
                open(osp.join(other, f), 'rb') as b:
            assert a.read() == b.read(), f


# --------------------------------------------------------------------------
# (i) train, checkpoint, resume
# --------------------------------------------------------------------------
@pytest.mark.timeout(600)
@pytest.mark.parametrize('algo', ['densecl', 'mocov2'])
def test_train_then_resume(algo, demo_data, tmp_path):
    config = DEMO_CONFIGS[algo]
    work_dir = str(tmp_path / 'work')
    batch = 8

    # 4 iterations, checkpoints at 2 and 4
    proc = run([sys.executable, TRAIN, config, '--work-dir', work_dir,
                 '--cfg-options'] + _train_options(demo_data, 4, batch))
    check_ok(proc)
    ckpt4 = osp.join(work_dir, 'iter_4.pth')
    assert osp.isfile(osp.join(work_dir, 'iter_2.pth'))
    assert osp.isfile(ckpt4)
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        assert f.read().strip().endswith('iter_4.pth')
    runs = _runs_with_scalars(work_dir)
    assert len(runs) == 1
    logged = _scalars(runs[0])
    assert [s['iter'] for s in logged] == [1, 2, 3, 4]
    assert all(s['loss'] == s['loss'] and s['loss'] > 0 for s in logged)
    saved = torch_load(ckpt4)
    assert saved['meta']['iter'] == 4
    assert int(saved['state_dict']['queue.ptr']) == (4 * batch) % QUEUE_LEN

    # What resume restores equals the checkpoint: model (queues, key
    # encoder, online weights), optimizer state and the iteration.
    check = run([sys.executable, osp.join(UTILS, 'resume_check.py'), ckpt4,
                 config,
                  '--work-dir', str(tmp_path / 'check'), '--resume', ckpt4,
                  '--cfg-options'] + _train_options(demo_data, 6, batch))
    check_ok(check)
    line = [ln for ln in check.stdout.splitlines()
            if ln.startswith('RESUME_REPORT ')]
    assert line, check.stdout[-3000:]
    report = json.loads(line[-1][len('RESUME_REPORT '):])
    assert report['iter'] == 4
    assert report['key_diff'] == []
    assert report['mismatch'] == []
    assert report['queue_ptr'] == (4 * batch) % QUEUE_LEN
    keys = report['keys']
    assert {'queue.feats', 'queue.ptr'} <= set(keys)
    assert any(k.startswith('key_encoder.backbone.') for k in keys)
    assert any(k.startswith('key_encoder.neck.') for k in keys)
    if algo == 'densecl':
        assert {'dense_queue.feats', 'dense_queue.ptr'} <= set(keys)
    assert report['optimizer_states'] > 0  # SGD momentum buffers
    assert report['optimizer_same']

    # --resume (auto: the work dir's latest checkpoint) goes on at iter 5
    proc = run([sys.executable, TRAIN, config, '--work-dir', work_dir,
                 '--resume', '--cfg-options']
                + _train_options(demo_data, 6, batch))
    check_ok(proc)
    out = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 4' in out
    runs = _runs_with_scalars(work_dir)
    assert len(runs) == 2
    assert [s['iter'] for s in _scalars(runs[-1])] == [5, 6]
    saved6 = torch_load(osp.join(work_dir, 'iter_6.pth'))
    assert saved6['meta']['iter'] == 6
    assert int(saved6['state_dict']['queue.ptr']) == (6 * batch) % QUEUE_LEN


# --------------------------------------------------------------------------
# (ii) two CPU processes with tools/dist_train.sh
# --------------------------------------------------------------------------
@pytest.mark.timeout(600)
def test_dist_train_two_cpu_processes(demo_data, tmp_path):
    import torch

    batch, iters = 4, 4
    cfg_file = str(tmp_path / 'densecl_dist_test.py')
    write_queue_dump_config(cfg_file, demo_data, batch, iters)
    work_dir = str(tmp_path / 'work')
    proc = run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), cfg_file,
                '2', '--work-dir', work_dir], timeout=540,
               PYTHON=sys.executable)
    check_ok(proc)

    r0 = check_queue_dumps(work_dir, batch, iters)
    filled = iters * 2 * batch
    # the rows written are unit-norm keys (not the initial random rows only)
    norms = r0['queue.feats'][:filled].norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)

    # rank 0's checkpoint holds the same queues
    saved = torch_load(osp.join(work_dir, f'iter_{iters}.pth'))
    assert saved['meta']['iter'] == iters
    for name in ('queue.feats', 'queue.ptr', 'dense_queue.feats',
                 'dense_queue.ptr'):
        key = name if name in saved['state_dict'] else 'module.' + name
        assert torch.equal(saved['state_dict'][key], r0[name]), name
    logged = _scalars(_runs_with_scalars(work_dir)[-1])
    assert [s['iter'] for s in logged] == list(range(1, iters + 1))


# --------------------------------------------------------------------------
# (iii) clear errors
# --------------------------------------------------------------------------
def _assert_clear_error(proc, *needles):
    assert proc.returncode != 0
    err = proc.stderr
    assert 'Traceback' not in err, err[-3000:]
    lines = [ln for ln in err.splitlines() if 'train.py: error:' in ln]
    assert len(lines) == 1, err[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_error_missing_config(tmp_path):
    missing = 'configs/demo/no_such_config.py'
    proc = run([sys.executable, TRAIN, missing, '--work-dir',
                 str(tmp_path)], timeout=120)
    _assert_clear_error(proc, 'config file not found', missing)


def test_error_misspelt_cfg_option(tmp_path):
    proc = run([sys.executable, TRAIN, DEMO_CONFIGS['densecl'],
                 '--work-dir', str(tmp_path), '--cfg-options',
                 'train_cfg.max_iters=2', 'train_dataloader.batch_sizee=4'],
                timeout=120)
    _assert_clear_error(proc, 'train_dataloader.batch_sizee', 'batch_size')
    assert not os.listdir(tmp_path)  # no runner was built


def test_error_missing_data_root(tmp_path):
    missing = str(tmp_path / 'no_images_here')
    proc = run([sys.executable, TRAIN, DEMO_CONFIGS['mocov2'],
                 '--work-dir', str(tmp_path / 'work'), '--cfg-options',
                 f'train_dataloader.dataset.data_root={missing}'],
                timeout=120)
    _assert_clear_error(proc, missing, 'make_demo_data.py', 'data/imagenet')


def _load_train_tool():
    from mmmask.apis import train
    return train


def test_cfg_option_key_check():
    from mmengine.config import Config

    train = _load_train_tool()
    cfg = Config.fromfile(DEMO_CONFIGS['densecl'])
    # existing keys, list items by index (negative too)
    train.check_option_keys(cfg, {
        'model.queue_len': 8, 'param_scheduler.0.T_max': 10,
        'param_scheduler.-1.eta_min': 0.1,
        'train_dataloader.dataset.pipeline.1.num_views': 2,
        'load_from': 'x.pth'})
    bad = {'model.backbone.dpeth': ('model.backbone', 'depth'),
           'param_scheduler.1.T_max': ('list of 1 items',),
           'param_scheduler.first.T_max': ('not an index',),
           'model.queue_len.size': ('int',),
           'optim_wrapper.optimizer.momentun': ('momentum',)}
    for key, needles in bad.items():
        with pytest.raises(train.UsageError) as info:
            train.check_option_keys(cfg, {key: 1})
        msg = str(info.value)
        assert key in msg
        for needle in needles:
            assert needle in msg, msg


def test_work_dir_default_and_resume_flags(tmp_path, monkeypatch):
    from mmengine.config import Config

    train = _load_train_tool()
    monkeypatch.setenv('LOCAL_RANK', '0')  # restored after the test
    monkeypatch.delenv('LOCAL_RANK')
    args = train.parse_args([DEMO_CONFIGS['mocov2'], '--resume',
                             '--local_rank', '3', '--no-validate'])
    assert os.environ['LOCAL_RANK'] == '3'
    cfg = train.merge_args(Config.fromfile(args.config), args)
    assert cfg.work_dir == osp.join('./work_dirs', 'mocov2_r18_demo')
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.val_cfg is None and cfg.launcher == 'none'
    args = train.parse_args([DEMO_CONFIGS['mocov2'], '--local-rank', '1'])
    assert args.local_rank == 1 and args.resume is None
    with pytest.raises(train.UsageError, match='--resume checkpoint'):
        train.merge_args(Config.fromfile(args.config), train.parse_args(
            [DEMO_CONFIGS['mocov2'], '--resume', str(tmp_path / 'x.pth')]))
    with pytest.raises(train.UsageError, match='auto_scale_lr'):
        train.merge_args(Config.fromfile(args.config), train.parse_args(
            [DEMO_CONFIGS['mocov2'], '--auto-scale-lr']))
    import torch
    if not torch.cuda.is_available():
        with pytest.raises(train.UsageError, match='--amp needs a CUDA'):
            train.merge_args(Config.fromfile(args.config), train.parse_args(
                [DEMO_CONFIGS['mocov2'], '--amp']))


def test_default_hooks_come_from_default_runtime(capsys):
    """The one list of default hooks is configs/_base_/default_runtime.py:
    a config that inherits it gets nothing added; one that lacks some gets
    exactly the missing ones (with the config's settings: priority), and
    the warning names them."""
    from mmengine.config import Config

    train = _load_train_tool()
    base = Config.fromfile(train.DEFAULT_RUNTIME)
    wanted = [h['type'] for h in base.custom_hooks]
    assert {'SafeCheckpointHook', 'ExactResumeHook', 'NonFiniteLossHook',
            'TrainDataCheckHook'} <= set(wanted)
    assert train.add_default_hooks(Config.fromfile(DEMO_CONFIGS['mocov2'])) \
        == []
    assert capsys.readouterr().err == ''

    cfg = Config(dict(custom_hooks=[dict(type='EMAHook'),
                                    dict(type='mmmask.NonFiniteLossHook',
                                         action='skip')]))
    added = train.add_default_hooks(cfg)
    assert added == [t for t in wanted if t != 'NonFiniteLossHook']
    types = [h['type'] for h in cfg.custom_hooks]
    assert types[:2] == ['EMAHook', 'mmmask.NonFiniteLossHook']
    assert types.count('mmmask.NonFiniteLossHook') == 1
    assert cfg.custom_hooks[1]['action'] == 'skip'  # the config's own kept
    safe = [h for h in cfg.custom_hooks if h['type'] == 'SafeCheckpointHook']
    assert safe[0]['priority'] == 'VERY_HIGH'
    err = capsys.readouterr().err
    assert err.startswith('train.py: warning:')
    assert all(t in err for t in added) and 'default_runtime.py' in err
    assert train.add_default_hooks(cfg) == []  # already there: unchanged
    # a built hook counts as its type
    from mmmask.engine.hooks import SafeCheckpointHook
    cfg = Config(dict(custom_hooks=[SafeCheckpointHook()]))
    assert 'SafeCheckpointHook' not in train.add_default_hooks(cfg)
