"""A 2-process run ends together: no rank exits before the final checkpoint
is on disk, and every rank closes its process group (DistributedEndHook).

Each run is ``tools/dist_train.sh CONFIG 2`` (torchrun, gloo on the CPU) of
one epoch (2 iterations) of DenseCL on 8 real photographs, with rank 0's final checkpoint
save made slow on purpose (a test hook sleeps before it), the way a large
checkpoint on a slow disk is: before the hook, rank 1 left seconds before
the checkpoint existed (and once in six runs aborted at exit, which made
torchrun kill rank 0 mid-write). Every rank records, at interpreter exit
(an atexit handler registered in ``after_run``, so it runs before the
handlers that torch and mmengine registered earlier), when it left and
whether its process group was still open.
"""
import json
import os
import os.path as osp
import sys
import textwrap

import pytest
from helpers import ROOT, check_ok, run

DEMO = osp.join(ROOT, 'configs', 'demo', 'densecl_r18_demo.py')
RUNS = 3
ITERS = 2
SLOW_SAVE_S = 3.0


@pytest.fixture(scope='module')
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp('dist_end')
    images = str(base / 'images')
    check_ok(run([sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'),
                  '--out', images, '--num', '8'], timeout=120))
    cfg = base / 'densecl_dist_end.py'
    cfg.write_text(textwrap.dedent(f'''
        _base_ = [{DEMO!r}]
        custom_imports = dict(imports=['exit_record_hook'],
                              allow_failed_imports=False)
        custom_hooks = [dict(type='ExitRecordHook',
                             slow_save_s={SLOW_SAVE_S})]
        model = dict(queue_len=16, neck=dict(hid_channels=64))
        train_dataloader = dict(batch_size=2, num_workers=0,
                                persistent_workers=False,
                                dataset=dict(data_root={images!r}))
        # one epoch, as the failing run: the checkpoint is written in
        # after_train_epoch, after the last collective of the epoch
        train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop',
                         max_epochs=1)
        param_scheduler = []
        default_hooks = dict(logger=dict(interval=1),
                             checkpoint=dict(by_epoch=True, interval=1))
        log_processor = dict(by_epoch=True)
        '''))
    return base, cfg


@pytest.mark.timeout(900)
@pytest.mark.parametrize('repeat', range(RUNS))
def test_two_ranks_end_after_the_final_checkpoint(setup, repeat):
    import torch

    base, cfg = setup
    work_dir = base / f'work{repeat}'
    proc = run(['bash', osp.join(ROOT, 'tools', 'dist_train.sh'), str(cfg),
                '2', '--work-dir', str(work_dir)], timeout=840,
               PYTHON=sys.executable)
    check_ok(proc)
    assert 'terminate called' not in proc.stderr

    ckpt = work_dir / 'epoch_1.pth'
    assert ckpt.is_file(), sorted(os.listdir(work_dir))
    saved = torch.load(ckpt, map_location='cpu', weights_only=True)
    # 8 images, 2 ranks x 2 a batch: 2 iterations in the epoch
    assert saved['meta']['epoch'] == 1 and saved['meta']['iter'] == ITERS
    assert 'queue.feats' in saved['state_dict']
    written = ckpt.stat().st_mtime
    exits = []
    for rank in (0, 1):
        with open(work_dir / f'exit_rank{rank}.json') as f:
            exits.append(json.load(f))
    # no rank left before the last checkpoint was complete on disk
    left_early = {rank: written - e['time'] for rank, e in enumerate(exits)
                  if e['time'] < written}
    assert not left_early, f'seconds before the checkpoint: {left_early}'
    # and every rank closed its process group
    assert [e['group_open'] for e in exits] == [False, False], exits


def test_hook_closes_a_single_process_group(tmp_path):
    """In process: a 1-rank gloo group is closed by ``after_run``; without
    a group the hook does nothing."""
    import torch.distributed as dist

    from mmmask.engine.hooks import DistributedEndHook, close_distributed

    hook = DistributedEndHook()
    assert not dist.is_initialized()
    hook.after_run(runner=None)  # no group: nothing to do
    assert close_distributed() is False
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store',
                            rank=0, world_size=1)
    try:
        hook.after_run(runner=None)
        assert not dist.is_initialized()
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    keep = DistributedEndHook(destroy_process_group=False)
    dist.init_process_group('gloo', init_method=f'file://{tmp_path}/store2',
                            rank=0, world_size=1)
    try:
        keep.after_run(runner=None)
        assert dist.is_initialized()
    finally:
        dist.destroy_process_group()
    assert DistributedEndHook.priority == 'LOWEST'
