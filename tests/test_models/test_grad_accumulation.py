"""Momentum encoders under gradient accumulation (issue 16 item 9).

With ``optim_wrapper.accumulative_counts = k`` the online weights change
once every k micro-batches. The key / target encoder must take one EMA step
per optimizer step (not one per micro-batch, which makes the momentum
m^k), while the queues still receive every micro-batch's keys. Checked
through ``model.train_step`` with mmengine's ``OptimWrapper`` on the tiny
demo models of MoCo v2 (queue, shuffle BN), CMAE (target encoder, no
queue) and MACRL (key encoder and two queues), against a direct EMA
computation from the recorded online weights. The same under
``MMDistributedDataParallel`` in two gloo processes: see
tests/test_models/test_rank_randomness.py (one spawn for both 2-process
checks).
"""
import pytest
import torch
from mmengine.optim import OptimWrapper
from vit_direct import build, demo_model_cfg

from mmmask.models.utils import FeatureQueue, MomentumEncoder

N = 4
M = 0.9


def _model(name):
    overrides = dict(momentum=M)
    if name == 'mocov2_r18_demo':  # a narrow ResNet-18 on 32 px views
        overrides.update(queue_len=64,
                         backbone=dict(stem_channels=8, base_channels=8),
                         neck=dict(in_channels=64, hid_channels=32))
    if name == 'macrl_vit-tiny_demo':
        overrides.update(queue_len=64)
    return build(demo_model_cfg(name, **overrides))


def _data(name, step):
    g = torch.Generator().manual_seed(step)
    views = [torch.randint(0, 256, (N, 3, 32, 32), generator=g,
                           dtype=torch.uint8) for _ in range(2)]
    return dict(inputs=views, data_samples=None)


def _online(model):
    enc = next(m for m in model.modules() if isinstance(m, MomentumEncoder))
    names = [n for n, _ in enc.named_children()]
    params = [p for n in names for p in getattr(model, n).parameters()]
    return enc, params


@pytest.mark.parametrize('name', ['mocov2_r18_demo', 'cmae_vit-tiny_demo',
                                  'macrl_vit-tiny_demo'])
@pytest.mark.parametrize('k', [1, 3])
def test_one_ema_step_per_optimizer_step(name, k):
    model = _model(name)
    model.train()
    enc, online = _online(model)
    queues = [m for m in model.modules() if isinstance(m, FeatureQueue)]
    wrapper = OptimWrapper(torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.1),
        accumulative_counts=k)
    micro = 2 * k + 1  # two full windows, then the next window's first
    wrapper.initialize_count_status(model, 0, micro)
    expected = None  # the direct EMA of the online weights
    steps, counts = 0, []
    for i in range(micro):
        before = [p.detach().clone() for p in online]
        model.train_step(_data(name, i), wrapper)
        if i % k == 0:  # first micro-batch of a window: one EMA step
            expected = before if expected is None else [
                M * e + (1 - M) * b for e, b in zip(expected, before)]
        steps += int((i + 1) % k == 0)
        counts.append(int(enc.num_updates))
        for p_k, e in zip(enc.parameters(), expected):
            torch.testing.assert_close(p_k, e, rtol=1e-5, atol=1e-6)
        for q in queues:  # every micro-batch's keys went in
            q.flush()
            assert int(q.ptr) == (i + 1) * N % q.length
    # after the first optimizer step, one EMA step per optimizer step
    # (before it, the calls between the first copy and the step leave the
    # copy as it is: the online weights have not changed)
    assert steps == micro // k
    assert [c - counts[k - 1] for c in counts[k:]] == \
        [i // k for i in range(k, micro)]

