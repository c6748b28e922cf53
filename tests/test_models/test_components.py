"""Unit tests of the shared parts: loss, queue, momentum encoder, matching."""
import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from helpers import contrastive_cfg, tiny_resnet18
from mmmask.models import (FeatureQueue, MomentumEncoder, dense_correspondence,
                           info_nce)
from mmmask.registry import MODELS


def test_info_nce_equals_cross_entropy_over_concatenated_logits():
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    k = F.normalize(torch.randn(6, 8, generator=g), dim=1)
    bank = F.normalize(torch.randn(20, 8, generator=g), dim=1)
    tau = 0.2
    # direct formula, term by term
    expected = 0.0
    for i in range(6):
        pos = math.exp(float(q[i] @ k[i]) / tau)
        neg = sum(math.exp(float(q[i] @ bank[j]) / tau) for j in range(20))
        expected += -math.log(pos / (pos + neg))
    expected /= 6
    assert info_nce(q, k, bank, tau).item() == pytest.approx(expected, rel=1e-5)
    # extra negatives (already divided by tau) are extra columns
    extra = torch.randn(6, 2, generator=g)
    logits = torch.cat([(q * k).sum(1, keepdim=True) / tau, q @ bank.t() / tau,
                        extra], dim=1)
    ce = F.cross_entropy(logits, torch.zeros(6, dtype=torch.long))
    assert info_nce(q, k, bank, tau, extra).item() == pytest.approx(ce.item(),
                                                                      rel=1e-5)


@pytest.mark.parametrize('with_extra', [False, True])
def test_info_nce_gradients_equal_autograd_cross_entropy(with_extra):
    g = torch.Generator().manual_seed(3)
    q = F.normalize(torch.randn(5, 6, generator=g, dtype=torch.double), dim=1)
    k = F.normalize(torch.randn(5, 6, generator=g, dtype=torch.double), dim=1)
    bank = F.normalize(torch.randn(9, 6, generator=g, dtype=torch.double), 1)
    extra = torch.randn(5, 2, generator=g, dtype=torch.double)
    inputs = [t.clone().requires_grad_() for t in (q, k, extra)]
    ours = info_nce(inputs[0], inputs[1], bank, 0.2,
                    inputs[2] if with_extra else None)
    ref_inputs = [t.clone().requires_grad_() for t in (q, k, extra)]
    logits = [(ref_inputs[0] * ref_inputs[1]).sum(1, keepdim=True) / 0.2,
              ref_inputs[0] @ bank.t() / 0.2]
    if with_extra:
        logits.append(ref_inputs[2])
    ref = F.cross_entropy(torch.cat(logits, 1), torch.zeros(5, dtype=torch.long))
    assert ours.dtype == torch.double
    assert torch.allclose(ours, ref, atol=1e-12)
    n = 3 if with_extra else 2
    for a, b in zip(torch.autograd.grad(ours, inputs[:n]),
                    torch.autograd.grad(ref, ref_inputs[:n])):
        assert torch.allclose(a, b, atol=1e-12)


def test_feature_queue_fifo_and_wraparound():
    queue = FeatureQueue(length=5, dim=2)
    assert torch.allclose(queue.feats.norm(dim=1), torch.ones(5))
    keys = torch.arange(8, dtype=torch.float).view(4, 2)
    before = queue.feats.clone()
    queue.enqueue(keys[:3])
    # held until the next read, so a loss that read the queue can backward
    assert torch.equal(queue.feats, before) and int(queue.ptr) == 0
    feats = queue.negatives()
    assert int(queue.ptr) == 3
    assert torch.equal(feats[:3], keys[:3])
    queue.enqueue(keys)  # rows 3, 4 then wraps to 0, 1
    state = queue.state_dict()  # a checkpoint sees every enqueued key
    assert int(state['ptr']) == 2
    assert torch.equal(state['feats'][3:5], keys[:2])
    assert torch.equal(state['feats'][0:2], keys[2:4])
    with pytest.raises(ValueError, match='cannot enqueue 6 keys'):
        queue.enqueue(torch.zeros(6, 2))


def test_queue_is_updated_in_place_after_backward():
    """The loss reads the queue; the keys are written in place (no copy of
    the queue) only after that loss's backward."""
    queue = FeatureQueue(length=8, dim=4)
    storage = queue.feats.data_ptr()
    q = torch.randn(2, 4, requires_grad=True)
    loss = info_nce(F.normalize(q, dim=1), F.normalize(torch.randn(2, 4), dim=1),
                    queue.negatives(), 0.2)
    queue.enqueue(torch.randn(2, 4))
    loss.backward()  # would fail if the enqueue had modified the queue
    queue.negatives()
    assert queue.feats.data_ptr() == storage and int(queue.ptr) == 2


def test_momentum_encoder_first_copy_then_ema_and_buffers():
    online = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    enc = MomentumEncoder(dict(net=online), momentum=0.9)
    assert not any(p.requires_grad for p in enc.parameters())
    with torch.no_grad():
        online[0].weight.fill_(1.0)
        online[1].running_mean.fill_(5.0)
    enc.update(dict(net=online))  # first update copies
    assert torch.equal(enc.net[0].weight, online[0].weight)
    with torch.no_grad():
        online[0].weight.fill_(3.0)
    enc.update(dict(net=online))  # 0.9 * 1 + 0.1 * 3
    assert torch.allclose(enc.net[0].weight, torch.full((2, 3), 1.2))
    assert torch.equal(enc.net[1].running_mean, torch.full((2, ), 5.0))
    assert int(enc.num_updates) == 2
    with pytest.raises(ValueError, match='momentum'):
        MomentumEncoder(dict(net=online), momentum=1.0)


def test_dense_correspondence_finds_the_permuted_location():
    g = torch.Generator().manual_seed(1)
    q = torch.randn(2, 16, 9, generator=g)
    perm = torch.randperm(9, generator=g)
    k = q[:, :, perm] * 3.0  # same features, other places, other scale
    match = dense_correspondence(q, k)
    # location i of q sits at position argsort(perm)[i] of k
    assert torch.equal(match, torch.argsort(perm).expand(2, 9))


def test_sync_bn_falls_back_to_bn_without_process_group():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        model = MODELS.build(dict(
            type='DenseCL', queue_len=8, feat_dim=4, key_bn='sync',
            backbone=dict(type='ResNet', depth=18, stem_channels=8,
                          base_channels=8, out_indices=(3, ),
                          norm_cfg=dict(type='SyncBN')),
            neck=dict(type='DenseProjectionNeck', in_channels=64,
                      hid_channels=8, out_channels=4),
            head=dict(type='InfoNCEHead')))
    assert not any(isinstance(m, nn.SyncBatchNorm) for m in model.modules())
    assert any('SyncBN' in str(w.message) for w in caught)
    losses = model.loss([torch.randn(2, 3, 32, 32), torch.randn(2, 3, 32, 32)])
    assert set(losses) == {'loss_global', 'loss_dense'}


def test_neck_channel_mismatch_is_one_clear_error():
    neck = MODELS.build(dict(type='MLPProjectionNeck', in_channels=2048))
    with pytest.raises(ValueError, match='in_channels=2048.*shape'):
        neck((torch.randn(2, 512, 2, 2), ))


def test_single_view_input_is_a_clear_error():
    model = MODELS.build(contrastive_cfg(
        'mmmask', 'mocov2', dict(in_channels=64, hid_channels=8,
                                 out_channels=4),
        backbone=tiny_resnet18(), queue_len=8, feat_dim=4))
    with pytest.raises(ValueError, match='two views'):
        model.loss(torch.randn(2, 3, 32, 32))


class _FakeRunner:
    def __init__(self, model):
        self.model, self.iter = model, 0


def test_loss_weight_warmup_hook():
    from mmmask.engine.hooks import LossWeightWarmupHook
    model = nn.Module()
    model.loss_lambda = 0.5
    runner = _FakeRunner(model)
    hook = LossWeightWarmupHook(warmup_iters=3)
    hook.before_train(runner)
    seen = []
    for it in range(5):
        runner.iter = it
        hook.before_train_iter(runner, it)
        seen.append(model.loss_lambda)
    assert seen == [0.0, 0.0, 0.0, 0.5, 0.5]


def test_densecl_with_a_coarser_num_grid():
    """num_grid below the native C5 grid: correspondence on pooled features."""
    model = MODELS.build(contrastive_cfg(
        'mmmask', 'densecl', dict(in_channels=64, hid_channels=8,
                                  out_channels=4, num_grid=2),
        backbone=tiny_resnet18(), queue_len=8, feat_dim=4))
    losses = model.loss([torch.randn(2, 3, 96, 96), torch.randn(2, 3, 96, 96)])
    assert all(torch.isfinite(v) for v in losses.values())


def test_dense_neck_tells_densecl_its_grid():
    """The neck's to_grid is the grid of its dense output (pooled to S x S,
    or the native map); DenseCL matches on it and refuses a neck without
    one."""
    neck = MODELS.build(dict(type='DenseProjectionNeck', in_channels=64,
                             hid_channels=8, out_channels=4, num_grid=2))
    x = torch.randn(2, 64, 6, 6)
    assert torch.equal(neck.to_grid(x), F.adaptive_avg_pool2d(x, 2))
    assert neck([x])[1].shape == (2, 4, 4)
    native = MODELS.build(dict(type='DenseProjectionNeck', in_channels=64,
                               hid_channels=8, out_channels=4))
    assert native.to_grid(x) is x
    with pytest.raises(TypeError, match='DenseCL needs a neck with '
                       'to_grid.*MLPProjectionNeck has none'):
        MODELS.build(dict(
            type='DenseCL', backbone=tiny_resnet18(),
            neck=dict(type='MLPProjectionNeck', in_channels=64,
                      hid_channels=8, out_channels=4),
            head=dict(type='InfoNCEHead'), queue_len=8, feat_dim=4))


def test_head_divides_extra_negative_similarities_by_its_tau():
    """The algorithm passes similarities (cosines, maybe scaled); the head
    turns them into logits with its own temperature."""
    from mmmask.models.losses import info_nce
    g = torch.Generator().manual_seed(0)
    q = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    k = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    bank = F.normalize(torch.randn(7, 8, generator=g), dim=1)
    sims = 2 * torch.einsum('nc,nc->n', q, k.roll(1, 0))[:, None]
    head = MODELS.build(dict(type='InfoNCEHead', temperature=0.1))
    assert torch.equal(head.loss(q, k, bank, sims),
                       info_nce(q, k, bank, 0.1, sims / 0.1))
    assert not torch.allclose(head.loss(q, k, bank, sims),
                              info_nce(q, k, bank, 0.1, sims))
