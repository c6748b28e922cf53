"""mmengine's FlexibleRunner through one ``_base_`` line
(``configs/_base_/strategies/{ddp,fsdp}.py``), 2 CPU processes with gloo
(tools/dist_train.sh).

The same tiny DenseCL run (shuffle BN, both queues, EMA key encoder) is
trained by the plain Runner (MMDistributedDataParallel), by FlexibleRunner +
DDPStrategy and by FlexibleRunner + FSDPStrategy. The Runner builds the model
before the dataloader and the FlexibleRunner after it, so the same seed gives
different initial weights and generator states; every run therefore starts
from one saved initial state dict (``load_from``) and reseeds its generators
at ``before_train`` (a test hook). From there the losses must agree, and on
every rank the key encoder and the queues must be identical across ranks and
across strategies.
"""
import os.path as osp
import subprocess
import sys

import pytest
import torch
from helpers import (DEMO_CONFIG_DIR, ROOT, UTILS, check_ok, env, free_port,
                     read_losses, tiny_run_config)
from mmengine.config import Config

ITERS = 3
STRATEGIES = osp.join(ROOT, 'configs', '_base_', 'strategies')

# the test hooks and the driver: tests/utils/flex_test_hooks.py,
# tests/utils/flex_test_driver.py


@pytest.fixture(scope='module')
def runs(tmp_path_factory, demo_images):
    tmp = tmp_path_factory.mktemp('flexible')
    data = demo_images
    base = osp.join(DEMO_CONFIG_DIR, 'densecl_r18_demo.py')
    init = tmp / 'init.pth'
    body = f'''
        randomness = dict(seed=3, deterministic=True)
        log_processor = dict(window_size=1)
        load_from = {str(init)!r}
        # three runs share one process group: keep it open between them
        custom_hooks = [dict(type='ReseedHook'), dict(type='DumpStateHook'),
                        dict(type='DistributedEndHook',
                             destroy_process_group=False)]
        '''
    configs = {}
    for name, extra in [('runner', []), ('ddp', ['ddp.py']),
                        ('fsdp', ['fsdp.py'])]:
        path = tmp / f'{name}.py'
        path.write_text(tiny_run_config(
            [base] + [osp.join(STRATEGIES, e) for e in extra], data, body,
            batch=2, max_iters=ITERS, imports=['flex_test_hooks']))
        configs[name] = path

    # one initial state for all runs
    sys.path.insert(0, UTILS)
    try:
        import mmmask.models  # noqa: F401
        from mmmask.registry import MODELS
        torch.manual_seed(0)
        model = MODELS.build(Config.fromfile(str(configs['runner'])).model)
        model.init_weights()
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), init)
    finally:
        sys.path.remove(UTILS)

    # the three runs one after another in the same 2 processes (one
    # torchrun, one process group, the imports paid once)
    works = {name: tmp / name for name in configs}
    argv = [a for name in configs for a in (str(configs[name]),
                                            str(works[name]))]
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--nnodes=1',
         '--nproc_per_node=2', f'--master_port={free_port()}', '-m',
         'flex_test_driver'] + argv,
        cwd=ROOT, env=env(), timeout=500, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    check_ok(proc)
    out = {}
    for name, work in works.items():
        out[name] = dict(
            losses={r['iter']: r['loss'] for r in read_losses(str(work))
                    if 'loss' in r},
            ranks=[torch.load(str(work / f'rank{r}.pt'), weights_only=True)
                   for r in (0, 1)],
            ckpt=torch.load(str(work / f'iter_{ITERS}.pth'),
                            weights_only=True),
            cfg=Config.fromfile(str(work / f'{name}.py')))
    out['init'] = torch.load(str(init), weights_only=True)['state_dict']
    return out


def _max_diff(a, b):
    return max(abs(a[i] - b[i]) for i in a)


def test_strategies_are_the_runners_they_claim(runs):
    assert [r['wrapper'] for r in runs['runner']['ranks']] == \
        ['MMDistributedDataParallel'] * 2
    assert [r['wrapper'] for r in runs['ddp']['ranks']] == \
        ['MMDistributedDataParallel'] * 2
    assert [r['wrapper'] for r in runs['fsdp']['ranks']] == \
        ['MMFullyShardedDataParallel'] * 2
    assert all(r['world_size'] == 2 for run in ('runner', 'ddp', 'fsdp')
               for r in runs[run]['ranks'])
    # one _base_ line made the difference
    assert 'runner_type' not in runs['runner']['cfg']
    for run, strategy in (('ddp', 'DDPStrategy'), ('fsdp', 'FSDPStrategy')):
        cfg = runs[run]['cfg']
        assert cfg.runner_type == 'FlexibleRunner'
        assert cfg.strategy.type == strategy
        assert cfg.model == runs['runner']['cfg'].model


def test_ddp_strategy_losses_equal_the_runners(runs):
    ref, ddp = runs['runner']['losses'], runs['ddp']['losses']
    assert sorted(ref) == list(range(1, ITERS + 1))
    assert len(set(ref.values())) == ITERS
    assert sorted(ddp) == sorted(ref)
    assert _max_diff(ddp, ref) <= 1e-6, (ddp, ref)


def test_fsdp_strategy_losses_match(runs):
    ref, fsdp = runs['runner']['losses'], runs['fsdp']['losses']
    assert sorted(fsdp) == sorted(ref)
    # sharded gradient reduction sums in another order
    assert _max_diff(fsdp, ref) <= 1e-5, (fsdp, ref)


@pytest.mark.parametrize('run', ['runner', 'ddp', 'fsdp'])
def test_key_encoder_and_queues_stay_in_sync(runs, run):
    r0, r1 = runs[run]['ranks']
    ref = runs['runner']['ranks'][0]
    # BN running statistics are each rank's own (copied from its online BN,
    # buffers are not broadcast), as in MoCo; everything else is shared.
    for key in r0:
        if isinstance(r0[key], torch.Tensor) and 'running_' not in key \
                and 'num_batches_tracked' not in key:
            # identical on both ranks ...
            assert torch.equal(r0[key], r1[key]), (run, key)
            # ... and the same as under the plain Runner
            assert torch.allclose(r0[key].double(), ref[key].double(),
                                  atol=1e-5), (run, key)
    assert int(r0['num_updates']) == ITERS  # one EMA step per iteration
    # the EMA moved the key encoder away from the initial online weights
    init = runs['init']
    moved = [k for k in r0 if k.endswith('conv1.weight')
             and not torch.equal(r0[k], init[k])]
    assert moved
    # each enqueue held the keys of both ranks (2 x batch 2)
    assert int(r0['queue.ptr']) == (ITERS * 4) % 16


@pytest.mark.parametrize('run', ['ddp', 'fsdp'])
def test_checkpoints_name_the_model_not_the_wrapper(runs, run):
    ref = runs['runner']['ckpt']['state_dict']
    state = runs[run]['ckpt']['state_dict']
    assert set(state) == set(ref)
    assert any(k.startswith('backbone.') for k in state)
    for key in ('queue.feats', 'dense_queue.feats', 'key_encoder.num_updates'):
        assert torch.allclose(state[key].double(), ref[key].double(),
                              atol=1e-5), key


def _train_tool():
    from mmmask.apis import train
    return train


def test_deepspeed_base_line_switches_runner_and_optim_wrapper(tmp_path):
    # deepspeed is not installed here: only the config is checked
    cfg_file = tmp_path / 'densecl_deepspeed.py'
    cfg_file.write_text(
        f"_base_ = [{osp.join(ROOT, 'configs', 'densecl_r50.py')!r}, "
        f"{osp.join(STRATEGIES, 'deepspeed.py')!r}]\n")
    train = _train_tool()
    args = train.parse_args([str(cfg_file), '--work-dir', str(tmp_path)])
    cfg = train.merge_args(Config.fromfile(args.config), args)
    train.adapt_to_strategy(cfg)
    assert cfg.runner_type == 'FlexibleRunner'
    assert cfg.strategy.type == 'DeepSpeedStrategy'
    assert cfg.strategy.zero_optimization.stage == 2
    assert cfg.optim_wrapper.type == 'DeepSpeedOptimWrapper'
    # the method's optimizer is kept
    plain = Config.fromfile(osp.join(ROOT, 'configs', 'densecl_r50.py'))
    assert cfg.optim_wrapper.optimizer == plain.optim_wrapper.optimizer
    assert cfg.model == plain.model
