"""Per-rank, resumable randomness of what the models draw themselves
(issue 16 item 4): CMAE's and MACRL's in-model masks and shuffle BN's
permutation come from :class:`StepRandom` streams.

Two gloo processes share one run seed (``randomness.seed`` with
``diff_rank_seed`` off: the same ``torch.initial_seed()`` on both ranks,
as mmengine sets it) and the runner's iteration (the MessageHub's
``'iter'``):

* at one iteration the two ranks draw different masks;
* the same iteration drawn again by a freshly built model (what a resumed
  run does: new process, same seed, same iteration) gives the same masks;
* another iteration gives other masks;
* shuffle BN's permutation is the same on both ranks (rank 0's) and the
  same again at the same iteration.

The same spawn also runs the 2-process check of issue 16 item 9 (spawning
costs more than both checks): under ``MMDistributedDataParallel``, whose
``train_step`` does not call the model's, with 2-step gradient
accumulation, MACRL's key encoder takes one EMA step per optimizer step
and its queue gets both ranks' keys every micro-batch (the one-process
checks: tests/test_models/test_grad_accumulation.py).
"""
import json
import os.path as osp
import socket

import pytest
import torch
import torch.multiprocessing as mp
from vit_direct import build, demo_model_cfg

N = 4
K = 2  # accumulative_counts of the DDP check


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _masks_of(model, name):
    """The masks ``model.loss`` hands to the encoder, as nested lists."""
    seen = []
    encode = model.backbone.encode

    def recording(x, mask=None, **kwargs):
        if mask is not None:
            seen.append(mask.int().tolist())
        return encode(x, mask, **kwargs)

    model.backbone.encode = recording
    g = torch.Generator().manual_seed(7)
    views = [torch.randn(N, 3, 32, 32, generator=g) for _ in range(2)]
    model.loss(views, None)
    model.backbone.encode = encode
    return seen


def _worker(rank, port, out_dir):
    import torch.distributed as dist
    from mmengine.logging import MessageHub

    from mmmask.models.utils import batch_shuffle
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    try:
        # what the runner does with randomness.seed=0, diff_rank_seed off:
        # the same global random states on every rank
        from mmengine.runner import set_random_seed
        set_random_seed(0)
        hub = MessageHub.get_instance('test_rank_randomness')
        out = {}
        for name in ('cmae_vit-tiny_demo', 'macrl_vit-tiny_demo'):
            cfg = demo_model_cfg(name)
            for run, it in (('a', 3), ('b', 3), ('c', 4)):
                hub.update_info('iter', it)
                model = build(cfg, seed=0)  # run seed 0 on both ranks
                out[f'{name}/{run}'] = _masks_of(model, name)
        x = torch.arange(N, dtype=torch.float32)[:, None] + 10 * rank
        for run, it in (('a', 3), ('c', 4), ('b', 3)):
            hub.update_info('iter', it)
            mine, _ = batch_shuffle(x)
            out[f'shuffle/{run}'] = mine[:, 0].tolist()
        out['ddp'] = _ddp_accumulation(rank)
        with open(osp.join(out_dir, f'{rank}.json'), 'w') as f:
            json.dump(out, f)
    finally:
        dist.destroy_process_group()


def _ddp_accumulation(rank):
    """MACRL through MMDistributedDataParallel.train_step with K-step
    accumulation: the key encoder's update count and the strong queue's
    pointer after every micro-batch."""
    from mmengine.model import MMDistributedDataParallel
    from mmengine.optim import OptimWrapper
    model = build(demo_model_cfg('macrl_vit-tiny_demo', momentum=0.9,
                                 queue_len=64))
    model.train()
    ddp = MMDistributedDataParallel(module=model)
    wrapper = OptimWrapper(torch.optim.SGD(
        [p for p in ddp.parameters() if p.requires_grad], lr=0.1),
        accumulative_counts=K)
    micro = 2 * K + 1
    wrapper.initialize_count_status(ddp, 0, micro)
    updates, ptrs = [], []
    for i in range(micro):
        g = torch.Generator().manual_seed(10 * rank + i)
        views = [torch.randint(0, 256, (N, 3, 32, 32), generator=g,
                               dtype=torch.uint8) for _ in range(2)]
        ddp.train_step(dict(inputs=views, data_samples=None), wrapper)
        updates.append(int(model.key_encoder.num_updates))
        model.queue_strong.flush()
        ptrs.append(int(model.queue_strong.ptr))
    return dict(updates=updates, ptrs=ptrs)


@pytest.fixture(scope='module')
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp('two_ranks')
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=2)
    res = []
    for rank in range(2):
        with open(out / f'{rank}.json') as f:
            res.append(json.load(f))
    return res


def test_one_ema_step_per_optimizer_step_under_ddp(two_ranks):
    for r in two_ranks:
        c = r['ddp']['updates']
        # from the first optimizer step (micro-batch K - 1) on, one EMA
        # step per optimizer step (a 2 K + 1 run: 1, 1, 2 after it)
        assert [u - c[K - 1] for u in c[K:]] == \
            [i // K for i in range(K, 2 * K + 1)]
        # both ranks' keys went into the queue every micro-batch
        assert r['ddp']['ptrs'] == [(i + 1) * 2 * N % 64
                                    for i in range(2 * K + 1)]


def test_masks_differ_across_ranks_and_repeat_on_resume(two_ranks):
    res = two_ranks
    for name in ('cmae_vit-tiny_demo', 'macrl_vit-tiny_demo'):
        branches = 1 if name.startswith('cmae') else 2
        for r in res:
            assert len(r[f'{name}/a']) == branches
            # a fresh model at the same iteration: the same masks
            assert r[f'{name}/a'] == r[f'{name}/b'], name
            # the next iteration: other masks
            assert r[f'{name}/a'] != r[f'{name}/c'], name
        # the two ranks: other masks at the same iteration
        assert res[0][f'{name}/a'] != res[1][f'{name}/a'], name
        # (and the N masks of one batch differ from each other)
        first = res[0][f'{name}/a'][0]
        assert any(m != first[0] for m in first[1:])
    # shuffle BN: all ranks use one permutation of the global batch (rank
    # 0's draw), so the two ranks hold disjoint halves of it ...
    for run in ('a', 'b', 'c'):
        both = res[0][f'shuffle/{run}'] + res[1][f'shuffle/{run}']
        assert sorted(both) == [0., 1., 2., 3., 10., 11., 12., 13.]
    # ... and the same iteration gives the same permutation again
    for r in res:
        assert r['shuffle/a'] == r['shuffle/b']
    assert any(r['shuffle/a'] != r['shuffle/c'] for r in res)
