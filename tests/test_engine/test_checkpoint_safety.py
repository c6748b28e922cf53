"""Checkpoint safety on torch >= 2.6 (weights-only ``torch.load``).

A tiny model is trained for a few iterations by mmengine's Runner on the CPU,
once with :class:`~mmmask.engine.hooks.SafeCheckpointHook` and once without
(an "old-style" checkpoint, as plain mmengine writes it). The tests check
that

* the hook's checkpoints load with plain ``torch.load(weights_only=True)``
  in a fresh interpreter that never imports mmmask (or mmengine);
* resuming from them restores the iteration and the message hub's scalars;
* old-style checkpoints load through ``load_checkpoint_file`` and through
  mmengine's own ``CheckpointLoader`` / ``Runner.resume`` once
  ``register_safe_loading()`` has run (importing mmmask changes nothing in
  mmengine), while tampered files are refused with ``UnsafeCheckpointError``;
* checkpoints are written atomically.
"""
import enum
import glob
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn as nn
from helpers import UTILS
from mmengine.fileio import get_file_backend
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import BaseModel
from mmengine.runner import CheckpointLoader, Runner
from mmengine.runner.checkpoint import (_load_checkpoint_with_prefix,
                                        save_checkpoint)
from torch.utils.data import DataLoader, Dataset, default_collate

import mmmask.engine.checkpoint as ckpt_mod
import mmmask.engine.checkpoint.io as ckpt_io
from mmmask.engine.checkpoint import (UnsafeCheckpointError,
                                      load_checkpoint_file)
from mmmask.engine.checkpoint import (HISTORY_BUFFER_TYPE,
                                      MMENGINE_CHECKPOINT_GLOBALS, TYPE_KEY,
                                      AtomicLocalBackend,
                                      restore_checkpoint_objects,
                                      to_plain_checkpoint)

MAX_ITERS = 4
ckpt_mod.register_safe_loading()  # the loader and backend, as train.py does


# --------------------------------------------------------------------------
# A toy model, dataset and runner
# --------------------------------------------------------------------------
class ToyModel(BaseModel):
    """Linear regression on 2-d inputs."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(2, 1)

    def forward(self, inputs, labels=None, mode='tensor'):
        out = self.linear(inputs).squeeze(-1)
        if mode == 'loss':
            return {'loss': ((out - labels) ** 2).mean()}
        return out


class ToyDataset(Dataset):
    """Random samples, more than the run needs (at the end of a dataloader
    mmengine's iteration loop sleeps 2 s); ``metainfo`` holds numpy values
    on purpose (mmengine copies it into ``checkpoint['meta']`` and the
    message hub)."""

    metainfo = {
        'classes': ('a', 'b'),
        'palette': np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8),
        'scale': np.float32(0.5),
    }

    def __init__(self):
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(4 * MAX_ITERS, 2, generator=gen)
        self.y = torch.randn(4 * MAX_ITERS, generator=gen)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return dict(inputs=self.x[i], labels=self.y[i])


class NumpyInfoHook(Hook):
    """Puts numpy values into the message hub's runtime info, as hooks of
    other packages do."""

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        runner.message_hub.update_info('np_scalar', np.float32(1.5))
        runner.message_hub.update_info('np_array', np.arange(3))


class ProbeHook(Hook):
    """Records what the runner holds when training (re)starts."""

    priority = 'LOWEST'

    def before_train(self, runner):
        self.iter = runner.iter
        loss = runner.message_hub.get_scalar('train/loss')
        self.loss_history = loss.data[0].copy()
        self.np_scalar = runner.message_hub.get_info('np_scalar')


def _make_runner(work_dir, name, safe=True, resume_from=None, probe=None,
                 max_iters=MAX_ITERS):
    custom_hooks = []
    if safe:
        custom_hooks.append(dict(type='SafeCheckpointHook'))
        custom_hooks.append(NumpyInfoHook())
    if probe is not None:
        custom_hooks.append(probe)
    return Runner(
        model=ToyModel(),
        work_dir=str(work_dir),
        experiment_name=name,  # one MessageHub instance per runner
        train_dataloader=DataLoader(
            ToyDataset(), batch_size=4, shuffle=False,
            collate_fn=default_collate),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', interval=2,
                            by_epoch=False),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=custom_hooks,
        default_scope='mmmask',
        resume=resume_from is not None,
        load_from=resume_from,
        log_level='WARNING',
    )


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """Checkpoints written with the hook (``safe``) and without (``old``)."""
    root = tmp_path_factory.mktemp('ckpt')
    runner = _make_runner(root / 'safe', 'ckpt_safe', safe=True)
    runner.train()
    safe_loss = runner.message_hub.get_scalar('train/loss').data[0].copy()
    runner = _make_runner(root / 'old', 'ckpt_old', safe=False)
    runner.train()
    return dict(
        root=root,
        safe2=str(root / 'safe' / 'iter_2.pth'),
        safe4=str(root / 'safe' / f'iter_{MAX_ITERS}.pth'),
        old2=str(root / 'old' / 'iter_2.pth'),
        safe_loss=safe_loss)


# --------------------------------------------------------------------------
# (a) checkpoints written with the hook
# --------------------------------------------------------------------------
def test_safe_checkpoint_loads_weights_only_in_fresh_process(trained):
    """No allow-list, no mmmask, no mmengine: plain torch accepts the file;
    the old-style file is refused there (so the check means something)."""
    proc = subprocess.run(
        [sys.executable, osp.join(UTILS, 'weights_only_check.py'),
         trained['safe4'], trained['old2']],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['modules'] == []
    assert {'meta', 'state_dict', 'message_hub', 'optimizer'} <= set(
        out['keys'])
    assert out['iter'] == MAX_ITERS
    assert out['loss_len'] == MAX_ITERS
    assert out['old'] == 'refused'
    assert out['default_load'] == ['linear.bias', 'linear.weight']


def test_safe_checkpoint_content_is_plain(trained):
    """HistoryBuffer -> marked dict; numpy in meta and runtime info ->
    tensors / Python scalars."""
    ck = torch.load(trained['safe4'], weights_only=True)
    loss = ck['message_hub']['log_scalars']['train/loss']
    assert loss[TYPE_KEY] == HISTORY_BUFFER_TYPE
    assert torch.equal(loss['log_history'],
                       torch.from_numpy(trained['safe_loss']))
    info = ck['message_hub']['runtime_info']
    assert info['np_scalar'] == 1.5 and type(info['np_scalar']) is float
    assert torch.equal(info['np_array'], torch.arange(3))
    meta = ck['meta']['dataset_meta']
    assert torch.equal(meta['palette'],
                       torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=torch.uint8))
    assert meta['classes'] == ('a', 'b')
    # the model's state_dict keeps its OrderedDict metadata
    assert hasattr(ck['state_dict'], '_metadata')


def test_resume_restores_message_hub_and_iter(trained, tmp_path):
    probe = ProbeHook()
    runner = _make_runner(tmp_path, 'resume_safe', resume_from=trained['safe2'],
                          probe=probe)
    runner.train()
    assert probe.iter == 2
    np.testing.assert_array_equal(probe.loss_history,
                                  trained['safe_loss'][:2])
    assert probe.np_scalar == 1.5
    hub = runner.message_hub
    assert len(hub.get_scalar('train/loss').data[0]) == MAX_ITERS
    assert isinstance(hub.get_scalar('train/loss'), HistoryBuffer)
    assert runner.iter == MAX_ITERS
    assert hub.get_info('iter') == MAX_ITERS - 1


def test_to_plain_and_restore_roundtrip():
    """Generic walk: nested containers, numpy, live state never mutated."""
    buf = HistoryBuffer([1.0, 2.0], [1, 1], max_length=7)
    sd = OrderedDict(w=torch.ones(2))
    sd._metadata = OrderedDict({'': {'version': 1}})
    runtime = {'a': np.int64(3), 'b': [np.float64(0.5), ('x', np.arange(2))],
               'c': np.array(['u', 'v'])}
    ck = {'state_dict': sd, 'message_hub': {'log_scalars': {'l': buf},
                                            'runtime_info': runtime}}
    assert to_plain_checkpoint(ck) == []
    assert ck['state_dict'] is sd  # unchanged parts stay the same objects
    assert isinstance(runtime['a'], np.int64)  # the live dict is untouched
    info = ck['message_hub']['runtime_info']
    assert info['a'] == 3 and type(info['a']) is int
    assert type(info['b'][0]) is float and isinstance(info['b'], list)
    assert torch.equal(info['b'][1][1], torch.arange(2))
    assert info['c'] == ['u', 'v']
    assert to_plain_checkpoint(ck) == []  # idempotent

    restore_checkpoint_objects(ck)
    back = ck['message_hub']['log_scalars']['l']
    assert isinstance(back, HistoryBuffer) and back.max_length == 7
    np.testing.assert_array_equal(back.data[0], [1.0, 2.0])
    assert back.data[0].dtype == np.float64
    assert back.mean() == 1.5

    class Custom:
        pass

    class Mode(enum.IntEnum):
        A = 1

    unknown = to_plain_checkpoint({'meta': {'x': Custom(), 'y': [Mode.A]}})
    assert len(unknown) == 2
    assert 'Custom' in unknown[0] and "['meta']['x']" in unknown[0]
    assert 'Mode' in unknown[1] and "['meta']['y'][0]" in unknown[1]
    # numpy's long double has no Python counterpart (.item() returns it)
    unknown = to_plain_checkpoint({'meta': {'ld': np.longdouble(0.5),
                                            'a': np.ones(2, np.longdouble)}})
    assert len(unknown) == 3 and all('longdouble' in u for u in unknown)


# --------------------------------------------------------------------------
# (b) loading older mmengine checkpoints, refusing anything else
# --------------------------------------------------------------------------
def test_old_checkpoint_loads_through_allow_list(trained):
    old = trained['old2']
    ck = load_checkpoint_file(old)
    assert isinstance(ck['message_hub']['log_scalars']['train/loss'],
                      HistoryBuffer)
    # mmengine's own entry points use the registered loader
    assert CheckpointLoader._get_checkpoint_loader(old) is \
        ckpt_mod.load_from_local
    ck2 = CheckpointLoader.load_checkpoint(old, map_location='cpu')
    assert torch.equal(ck2['state_dict']['linear.weight'],
                       ck['state_dict']['linear.weight'])
    # what PretrainedInit(prefix=...) calls
    sd = _load_checkpoint_with_prefix('linear.', old, map_location='cpu')
    assert set(sd) == {'weight', 'bias'}
    # the allow-list leaves no trace after loading
    assert not set(MMENGINE_CHECKPOINT_GLOBALS) & set(
        torch.serialization.get_safe_globals())


def test_exact_allow_list_for_old_checkpoint(trained):
    """Every global that the old checkpoint needs is on the list, and the
    list holds nothing but HistoryBuffer, numpy and the getattr stand-in."""
    needed = set(torch.serialization.get_unsafe_globals_in_checkpoint(
        trained['old2']))
    assert {'mmengine.logging.history_buffer.HistoryBuffer',
            'builtins.getattr', 'numpy.core.multiarray._reconstruct',
            'numpy.ndarray', 'numpy.dtype'} <= needed
    names = {g[1] if isinstance(g, tuple) else f'{g.__module__}.{g.__qualname__}'
             for g in MMENGINE_CHECKPOINT_GLOBALS}
    assert needed <= names
    for g in MMENGINE_CHECKPOINT_GLOBALS:
        obj = g[0] if isinstance(g, tuple) else g
        assert obj is HistoryBuffer or obj is ckpt_io._history_buffer_getattr \
            or (getattr(obj, '__module__', '') or '').startswith('numpy')


def test_resume_from_old_checkpoint(trained, tmp_path):
    probe = ProbeHook()
    runner = _make_runner(tmp_path, 'resume_old', resume_from=trained['old2'],
                          probe=probe)
    runner.train()
    assert probe.iter == 2 and len(probe.loss_history) == 2
    assert runner.iter == MAX_ITERS


class Evil:
    """A class that is not an mmengine checkpoint type."""


class SystemCall:
    """Pickles as ``os.system('touch <marker>')``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class ReachInit:
    """Pickles as ``getattr(HistoryBuffer, '__init__')``."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


@pytest.mark.parametrize('payload,refused', [
    ('class', 'Evil'),
    ('system', 'system'),
    ('getattr', 'builtins.getattr'),
    ('object_array', 'ObjectDType'),
])
def test_tampered_checkpoint_is_refused(tmp_path, payload, refused):
    marker = tmp_path / 'pwned'
    value = {
        'class': lambda: Evil(),
        'system': lambda: SystemCall(marker),
        'getattr': lambda: ReachInit(),
        'object_array': lambda: np.array([1, 'a'], dtype=object),
    }[payload]()
    path = tmp_path / 'tampered.pth'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': {'x': value}},
               path)
    with pytest.raises(UnsafeCheckpointError) as info:
        load_checkpoint_file(path)
    err = info.value
    assert str(path) in str(err) and err.path == str(path)
    assert refused in str(err)  # torch's own message is kept
    assert 'not an mmengine checkpoint type' in str(err)
    assert isinstance(err, pickle.UnpicklingError)
    assert isinstance(err, RuntimeError)
    assert str(pickle.loads(pickle.dumps(err))) == str(err)
    with pytest.raises(UnsafeCheckpointError):  # mmengine's route, too
        CheckpointLoader.load_checkpoint(str(path))
    assert not marker.exists()


def test_missing_file(tmp_path):
    path = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(path)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        CheckpointLoader.load_checkpoint(path)


def test_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv('HOME', str(tmp_path))
    torch.save({'w': torch.ones(1)}, tmp_path / 'c.pth')
    assert torch.equal(load_checkpoint_file('~/c.pth')['w'], torch.ones(1))


# --------------------------------------------------------------------------
# (c) atomic writes
# --------------------------------------------------------------------------
def test_local_backend_is_atomic(tmp_path):
    assert isinstance(get_file_backend(str(tmp_path / 'x.pth')),
                      AtomicLocalBackend)


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / 'sub' / 'latest.pth')
    save_checkpoint({'state_dict': {'w': torch.zeros(1000)}}, path)
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # as open() does
    before = open(path, 'rb').read()

    def write_half_then_die(f, data):
        f.write(data[:len(data) // 2])
        f.flush()
        raise KeyboardInterrupt('simulated kill during the write')

    monkeypatch.setattr(ckpt_io, '_write_all', write_half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({'state_dict': {'w': torch.ones(1000)}}, path)
    assert open(path, 'rb').read() == before
    assert torch.equal(load_checkpoint_file(path)['state_dict']['w'],
                       torch.zeros(1000))
    assert os.listdir(osp.dirname(path)) == ['latest.pth']  # no temp file

    monkeypatch.undo()
    save_checkpoint({'state_dict': {'w': torch.ones(1000)}}, path)
    assert torch.equal(load_checkpoint_file(path)['state_dict']['w'],
                       torch.ones(1000))
    assert glob.glob(osp.join(osp.dirname(path), '.*')) == []


def test_atomic_write_through_symlink(tmp_path):
    real = tmp_path / 'real.pth'
    link = tmp_path / 'link.pth'
    real.write_bytes(b'old')
    link.symlink_to(real)
    AtomicLocalBackend().put(b'new', str(link))
    assert link.is_symlink() and real.read_bytes() == b'new'


def test_import_leaves_mmengine_alone_until_registered():
    """Importing mmmask.engine keeps mmengine's own checkpoint loader and
    local file backend; ``register_safe_loading()`` is the one call that
    replaces them."""
    proc = subprocess.run(
        [sys.executable, osp.join(UTILS, 'registration_check.py')],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out['loader'] is True and out['backend'] is True
    assert out['after'][1] == 'AtomicLocalBackend'
    assert out['after'][0].startswith('mmmask.engine.checkpoint')
