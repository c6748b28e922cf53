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
import subprocess
import sys
import textwrap

import pytest
from helpers import ROOT

TRAIN = osp.join(ROOT, 'tools', 'train.py')
DEMO_CONFIGS = {
    'densecl': osp.join(ROOT, 'configs', 'demo', 'densecl_r18_demo.py'),
    'mocov2': osp.join(ROOT, 'configs', 'demo', 'mocov2_r18_demo.py'),
}
QUEUE_LEN = 64


def _env(extra_path=None):
    env = dict(os.environ)
    paths = [ROOT] + ([extra_path] if extra_path else [])
    if env.get('PYTHONPATH'):
        paths.append(env['PYTHONPATH'])
    env['PYTHONPATH'] = os.pathsep.join(paths)
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def _run(cmd, timeout=300, env=None, cwd=ROOT):
    proc = subprocess.run(cmd, cwd=cwd, env=env or _env(), timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    return proc


def _check_ok(proc):
    assert proc.returncode == 0, (
        f'exit {proc.returncode}\n--- stdout\n{proc.stdout[-4000:]}\n'
        f'--- stderr\n{proc.stderr[-6000:]}')


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


def _torch_load(path):
    import torch
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('demo_data') / 'images')
    proc = _run([sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'),
                 '--out', out, '--num', '40'], timeout=120)
    _check_ok(proc)
    return out


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
    again = _run([sys.executable, script, '--out', demo_data, '--num', '40'])
    _check_ok(again)
    assert 'nothing to do' in again.stdout
    other = str(tmp_path / 'again')
    _check_ok(_run([sys.executable, script, '--out', other, '--num', '40']))
    for f in files:
        with open(osp.join(demo_data, f), 'rb') as a, \
                open(osp.join(other, f), 'rb') as b:
            assert a.read() == b.read(), f


# --------------------------------------------------------------------------
# (i) train, checkpoint, resume
# --------------------------------------------------------------------------
RESUME_CHECK = r'''
import json, sys
import torch

from mmmask.apis import train
ckpt_path = sys.argv[2]
args = train.parse_args(sys.argv[3:])
cfg = train.build_cfg(args)
from mmmask.engine.checkpoint import register_safe_loading
register_safe_loading()
runner = train.build_runner(cfg)
runner.load_or_resume()

ckpt = torch.load(ckpt_path, map_location='cpu', weights_only=True)


def same(a, b):
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return set(a) == set(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


model_sd = runner.model.state_dict()
ckpt_sd = ckpt['state_dict']
report = dict(
    iter=runner.iter,
    keys=sorted(model_sd),
    key_diff=sorted(set(model_sd) ^ set(ckpt_sd)),
    mismatch=sorted(k for k in ckpt_sd
                    if k in model_sd and not same(model_sd[k], ckpt_sd[k])),
    queue_ptr=int(runner.model.queue.ptr),
    optimizer_same=same(runner.optim_wrapper.state_dict(), ckpt['optimizer']),
    optimizer_states=len(ckpt['optimizer']['state']),
)
print('RESUME_REPORT ' + json.dumps(report))
'''


@pytest.mark.timeout(600)
@pytest.mark.parametrize('algo', ['densecl', 'mocov2'])
def test_train_then_resume(algo, demo_data, tmp_path):
    config = DEMO_CONFIGS[algo]
    work_dir = str(tmp_path / 'work')
    batch = 8

    # 4 iterations, checkpoints at 2 and 4
    proc = _run([sys.executable, TRAIN, config, '--work-dir', work_dir,
                 '--cfg-options'] + _train_options(demo_data, 4, batch))
    _check_ok(proc)
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
    saved = _torch_load(ckpt4)
    assert saved['meta']['iter'] == 4
    assert int(saved['state_dict']['queue.ptr']) == (4 * batch) % QUEUE_LEN

    # What resume restores equals the checkpoint: model (queues, key
    # encoder, online weights), optimizer state and the iteration.
    check = _run([sys.executable, '-c', RESUME_CHECK, TRAIN, ckpt4, config,
                  '--work-dir', str(tmp_path / 'check'), '--resume', ckpt4,
                  '--cfg-options'] + _train_options(demo_data, 6, batch))
    _check_ok(check)
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
    proc = _run([sys.executable, TRAIN, config, '--work-dir', work_dir,
                 '--resume', '--cfg-options']
                + _train_options(demo_data, 6, batch))
    _check_ok(proc)
    out = proc.stdout + proc.stderr
    assert 'resumed epoch: 0, iter: 4' in out
    runs = _runs_with_scalars(work_dir)
    assert len(runs) == 2
    assert [s['iter'] for s in _scalars(runs[-1])] == [5, 6]
    saved6 = _torch_load(osp.join(work_dir, 'iter_6.pth'))
    assert saved6['meta']['iter'] == 6
    assert int(saved6['state_dict']['queue.ptr']) == (6 * batch) % QUEUE_LEN


# --------------------------------------------------------------------------
# (ii) two CPU processes with tools/dist_train.sh
# --------------------------------------------------------------------------
DUMP_HOOK = '''
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmask.registry import HOOKS


@HOOKS.register_module()
class DumpQueueHook(Hook):
    """Saves this rank's queues, queue pointers and parameter sums."""

    def __init__(self):
        self.ptrs = []

    def _model(self, runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        queue = self._model(runner).queue
        if hasattr(queue, 'flush'):  # keys may be held until after backward
            queue.flush()
        self.ptrs.append(int(queue.ptr))

    def after_train(self, runner):
        model = self._model(runner)
        out = {k: v.detach().clone() for k, v in model.state_dict().items()
               if k.split('.')[0] in ('queue', 'dense_queue')}
        out['ptrs'] = self.ptrs
        out['world_size'] = get_world_size()
        out['wrapped'] = type(runner.model).__name__
        out['param_sums'] = {k: float(p.detach().double().sum())
                             for k, p in model.named_parameters()}
        out['key_param_sums'] = {
            k: float(p.detach().double().sum())
            for k, p in model.key_encoder.named_parameters()}
        torch.save(out, osp.join(runner.work_dir,
                                 f'queue_rank{get_rank()}.pt'))
'''


@pytest.mark.timeout(600)
def test_dist_train_two_cpu_processes(demo_data, tmp_path):
    import torch

    hook_dir = tmp_path / 'hooks'
    hook_dir.mkdir()
    (hook_dir / 'mmmask_test_dump_queue.py').write_text(DUMP_HOOK)
    batch, iters = 4, 4
    cfg_file = tmp_path / 'densecl_dist_test.py'
    cfg_file.write_text(textwrap.dedent(f'''
        _base_ = [{DEMO_CONFIGS['densecl']!r}]
        custom_imports = dict(imports=['mmmask_test_dump_queue'],
                              allow_failed_imports=False)
        # tools/train.py adds SafeCheckpointHook to this list
        custom_hooks = [dict(type='DumpQueueHook')]
        model = dict(queue_len={QUEUE_LEN})
        train_dataloader = dict(batch_size={batch}, num_workers=0,
                                persistent_workers=False,
                                dataset=dict(data_root={demo_data!r}))
        train_cfg = dict(max_iters={iters})
        default_hooks = dict(logger=dict(interval=1),
                             checkpoint=dict(interval={iters}))
        '''))
    work_dir = str(tmp_path / 'work')
    env = _env(str(hook_dir))
    env['PYTHON'] = sys.executable
    env.pop('PORT', None)
    proc = _run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'),
                 str(cfg_file), '2', '--work-dir', work_dir],
                env=env, timeout=540)
    _check_ok(proc)

    dumps = [_torch_load(osp.join(work_dir, f'queue_rank{r}.pt'))
             for r in (0, 1)]
    for d in dumps:
        assert d['world_size'] == 2
        assert d['wrapped'] == 'MMDistributedDataParallel'
        # each enqueue holds the keys of both ranks: 2 * batch per iteration
        assert d['ptrs'] == [(i * 2 * batch) % QUEUE_LEN
                             for i in range(1, iters + 1)]
    r0, r1 = dumps
    for name in ('queue.feats', 'queue.ptr', 'dense_queue.feats',
                 'dense_queue.ptr'):
        assert torch.equal(r0[name], r1[name]), name
    filled = iters * 2 * batch
    # the rows written are unit-norm keys (not the initial random rows only)
    norms = r0['queue.feats'][:filled].norm(dim=1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-4)
    # DDP kept the online and key encoders identical on both ranks
    assert r0['param_sums'] == pytest.approx(r1['param_sums'], rel=1e-9)
    assert r0['key_param_sums'] == pytest.approx(r1['key_param_sums'],
                                                 rel=1e-9)

    # rank 0's checkpoint holds the same queues
    saved = _torch_load(osp.join(work_dir, f'iter_{iters}.pth'))
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
    proc = _run([sys.executable, TRAIN, missing, '--work-dir',
                 str(tmp_path)], timeout=120)
    _assert_clear_error(proc, 'config file not found', missing)


def test_error_misspelt_cfg_option(tmp_path):
    proc = _run([sys.executable, TRAIN, DEMO_CONFIGS['densecl'],
                 '--work-dir', str(tmp_path), '--cfg-options',
                 'train_cfg.max_iters=2', 'train_dataloader.batch_sizee=4'],
                timeout=120)
    _assert_clear_error(proc, 'train_dataloader.batch_sizee', 'batch_size')
    assert not os.listdir(tmp_path)  # no runner was built


def test_error_missing_data_root(tmp_path):
    missing = str(tmp_path / 'no_images_here')
    proc = _run([sys.executable, TRAIN, DEMO_CONFIGS['mocov2'],
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
