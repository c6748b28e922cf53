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
"""
import json
import os.path as osp
import socket

import torch
import torch.multiprocessing as mp
from vit_direct import build, demo_model_cfg

N = 4


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
        with open(osp.join(out_dir, f'{rank}.json'), 'w') as f:
            json.dump(out, f)
    finally:
        dist.destroy_process_group()


def test_masks_differ_across_ranks_and_repeat_on_resume(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2)
    res = []
    for rank in range(2):
        with open(tmp_path / f'{rank}.json') as f:
            res.append(json.load(f))
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
