"""mmmask's MoCo v2 / DenseCL against mmpretrain's (the independent reference).

mmpretrain's model is built and initialised, its state_dict converted into
mmmask's model (so weights, key encoders and queues start equal), then both
train side by side on the same batches: every loss term, every parameter,
buffer, key-encoder weight, queue and pointer must agree.

Tolerances: float32 throughout. The two implementations compute the same
maths in a different order (mmpretrain shuffles the key batch even in one
process, so the key encoder's BN sums in another order; its loss is
CrossEntropy over concatenated logits, mmmask's a logsumexp; adaptive pooling
vs mean), so results agree to float32 rounding, ~1e-7 relative. Losses are
compared at atol=1e-5; tensors at atol=1e-5 and rtol=1e-4, since after an
SGD step (lr 0.03) a gradient's rounding difference shows in the weights
relative to their size.
"""
import copy

import pytest
import torch
import torch.nn.functional as F
from helpers import (TINY_C5, build_mmmask_model, build_mmpretrain_model,
                     contrastive_cfg, tiny_resnet18)

import mmpretrain.models  # noqa: F401  (registers mmpretrain's models)
import mmmask.models  # noqa: F401
from mmmask.engine.checkpoint.convert_mmpretrain import (
    mmpretrain_to_mmmask, momentum_from_mmpretrain)

BATCH = 4
QUEUE_LEN = 64
FEAT_DIM = 16
HID = 32
C5 = TINY_C5  # ResNet-18 with base_channels=8: 8 * 2**3
LOSS_ATOL = 1e-5
ATOL, RTOL = 1e-5, 1e-4
# A large EMA step (mmpretrain's 1 - m) makes the key encoder visibly move
# after one SGD step; with 0.001 it would barely move within the tolerance.
PRETRAIN_MOMENTUM = 0.1


@pytest.fixture(autouse=True, scope='module')
def one_thread():
    """The models are tiny: one intra-op thread is as fast, and 10-20x
    faster when other processes keep the cores busy (threads wait on each
    other)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def backbone_cfg():
    return tiny_resnet18(zero_init_residual=False)


def _cfg(library, method, neck=None, **model):
    """The two libraries' models of ``method``, set up alike (DenseCL's
    loss weight and whole-map dense neck spelt out)."""
    neck = dict(in_channels=C5, hid_channels=HID, out_channels=FEAT_DIM,
                **(neck or {}))
    if method == 'densecl':
        neck.update(num_grid=None)
        model.update(loss_lambda=0.5)
    return contrastive_cfg(library, method, neck, backbone=backbone_cfg(),
                           queue_len=QUEUE_LEN, feat_dim=FEAT_DIM, **model)


def build_mmpretrain(method, momentum=PRETRAIN_MOMENTUM):
    neck = dict(with_avg_pool=True) if method == 'mocov2' else None
    return build_mmpretrain_model(
        _cfg('mmpretrain', method, neck, momentum=momentum))


def build_mmmask(method, momentum=PRETRAIN_MOMENTUM, key_bn='shuffle'):
    return build_mmmask_model(_cfg(
        'mmmask', method, momentum=momentum_from_mmpretrain(momentum),
        key_bn=key_bn))


def build_pair(method, momentum=PRETRAIN_MOMENTUM, seed=0):
    torch.manual_seed(seed)
    ref = build_mmpretrain(method, momentum)
    ours = build_mmmask(method, momentum)
    ours.load_state_dict(mmpretrain_to_mmmask(ref.state_dict(), method),
                         strict=True)
    return ref, ours


def make_views(size, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(BATCH, 3, size, size, generator=g) for _ in range(2)]


def term_pairs(method):
    """(mmpretrain loss name, mmmask loss name)."""
    if method == 'mocov2':
        return [('loss', 'loss_global')]
    return [('loss_single', 'loss_global'), ('loss_dense', 'loss_dense')]


def assert_losses_equal(method, ref_losses, our_losses):
    pairs = term_pairs(method)
    assert set(ref_losses) == {a for a, _ in pairs}
    assert set(our_losses) == {b for _, b in pairs}
    for a, b in pairs:
        torch.testing.assert_close(our_losses[b].detach(),
                                   ref_losses[a].detach(), atol=LOSS_ATOL,
                                   rtol=0, msg=lambda m: f'{a} vs {b}: {m}')


def assert_states_equal(method, ref, ours, what):
    """Every tensor of mmpretrain's state (converted to mmmask's layout)
    against mmmask's state: weights, BN buffers, key encoder, queues."""
    expected = mmpretrain_to_mmmask(ref.state_dict(), method)
    actual = ours.state_dict()
    assert set(expected) == set(actual)
    for key, exp in expected.items():
        act = actual[key]
        assert act.shape == exp.shape and act.dtype == exp.dtype, key
        if exp.dtype.is_floating_point:
            torch.testing.assert_close(
                act, exp, atol=ATOL, rtol=RTOL,
                msg=lambda m, key=key: f'{what}: {key}: {m}')
        else:
            assert torch.equal(act, exp), f'{what}: {key}: {act} != {exp}'


def sgd(model):
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=0.03, momentum=0.9, weight_decay=1e-4)


@torch.no_grad()
def expected_keys(model, method, im_k):
    """The normalised global keys (and DenseCL's pooled dense keys) that the
    key encoder as it is now gives for im_k; computed on a copy in train
    mode (batch statistics), as in loss()."""
    enc = copy.deepcopy(model.key_encoder).train()
    outs = enc.neck(enc.backbone(im_k))
    keys = [F.normalize(outs[0], dim=1)]
    if method == 'densecl':
        keys.append(F.normalize(outs[2], dim=1))
    return keys


CASES = [
    pytest.param('mocov2', 64, 0, id='mocov2-64px'),
    pytest.param('mocov2', 64, QUEUE_LEN - BATCH, id='mocov2-64px-wrap'),
    pytest.param('densecl', 64, 0, id='densecl-64px-2x2'),
    pytest.param('densecl', 96, QUEUE_LEN - BATCH, id='densecl-96px-3x3-wrap'),
]


@pytest.mark.parametrize('method,size,start_ptr', CASES)
def test_train_steps_match_mmpretrain(method, size, start_ptr):
    """Two iterations of loss() + SGD step on both models.

    Iteration 0: the first EMA update copies the online encoder; iteration
    1: the EMA moves (lerp) and the queues hold the keys of iteration 0
    (with ``start_ptr`` near the end, iteration 0 fills the last rows and the
    pointer wraps to 0 for iteration 1).

    After each iteration's comparisons mmmask's model is re-synced from
    mmpretrain's state, so that every iteration compares one step from the
    same state. Without it the float32 rounding differences (~1e-7) grow
    chaotically: after a few steps a BN output within ~1e-6 of 0 can take
    different signs in the two models, a ReLU then routes a gradient
    differently, and parameters differ by ~1e-3 although both
    implementations are right (seen at a third iteration of mocov2-64px-wrap).
    """
    ref, ours = build_pair(method)
    if start_ptr:  # start near the end: the second enqueue wraps around
        ref.queue_ptr.fill_(start_ptr)
        ours.queue.ptr.fill_(start_ptr)
        if method == 'densecl':
            ref.queue2_ptr.fill_(start_ptr)
            ours.dense_queue.ptr.fill_(start_ptr)
    ref.train()
    ours.train()
    assert_states_equal(method, ref, ours, 'after conversion')
    opt_ref, opt_ours = sgd(ref), sgd(ours)
    queues = [ours.queue] + ([ours.dense_queue] if method == 'densecl' else [])
    key_moved = False

    for it in range(2):
        views = make_views(size, seed=100 + it)
        before = [q.negatives().clone() for q in queues]
        ptr = int(ours.queue.ptr)
        key_before = [p.clone() for p in ours.key_encoder.parameters()]

        ref_losses = ref.loss([v.clone() for v in views], [])
        our_losses = ours.loss([v.clone() for v in views], None)
        assert_losses_equal(method, ref_losses, our_losses)
        assert int(ours.key_encoder.num_updates) == it + 1
        for model, losses, opt in ((ref, ref_losses, opt_ref),
                                   (ours, our_losses, opt_ours)):
            opt.zero_grad()
            sum(losses.values()).backward()

        # Key encoder (EMA weights, copied BN buffers), queues, pointers.
        # Compared after backward: mmmask's FeatureQueue holds the enqueued
        # keys until the next read or state_dict() (autograd still needs the
        # queue the loss read), so state_dict() must wait for backward.
        assert_states_equal(method, ref, ours, f'iter {it} after loss()')
        if it > 0:
            key_moved = key_moved or any(
                not torch.equal(a, b)
                for a, b in zip(key_before, ours.key_encoder.parameters()))

        # The batch's keys went in at the pointer, nothing else changed. The
        # key encoder was updated at the start of loss() and is unchanged
        # since, so recomputing the keys with it must give the queued rows.
        rows = [(ptr + i) % QUEUE_LEN for i in range(BATCH)]
        others = [r for r in range(QUEUE_LEN) if r not in rows]
        for queue, old, keys in zip(queues, before,
                                    expected_keys(ours, method, views[1])):
            feats = queue.negatives()  # (flushed already by state_dict())
            torch.testing.assert_close(feats[rows], keys, atol=ATOL,
                                       rtol=RTOL)
            assert torch.equal(feats[others], old[others])
            assert int(queue.ptr) == (ptr + BATCH) % QUEUE_LEN

        opt_ref.step()
        opt_ours.step()
        assert_states_equal(method, ref, ours, f'iter {it} after SGD step')
        # re-sync (in place: the optimizer keeps its parameters)
        ours.load_state_dict(mmpretrain_to_mmmask(ref.state_dict(), method))

    # The EMA really moved the key encoder (lerp, not only the first copy),
    # and it is no longer a copy of the online encoder.
    assert key_moved
    diff = max((k - q).abs().max().item() for k, q in zip(
        ours.key_encoder.backbone.parameters(), ours.backbone.parameters()))
    assert diff > 1e-4


@pytest.mark.parametrize('method', ['mocov2', 'densecl'])
def test_first_update_copies_then_lerps(method):
    """First EMA update copies the online weights; the next one is
    k <- m k + (1 - m) q, in mmmask's convention m = 1 - mmpretrain's."""
    ref, ours = build_pair(method)
    ours.train()
    views = make_views(64, seed=7)
    ours.loss(views, None)
    for k, q in zip(ours.key_encoder.parameters(),
                    list(ours.backbone.parameters()) +
                    list(ours.neck.parameters())):
        assert torch.equal(k, q)
    k_before = [p.clone() for p in ours.key_encoder.parameters()]
    with torch.no_grad():
        for p in list(ours.backbone.parameters()) + list(
                ours.neck.parameters()):
            p.add_(torch.randn_like(p) * 0.1)
    ours.loss(views, None)
    m = momentum_from_mmpretrain(PRETRAIN_MOMENTUM)
    q_params = list(ours.backbone.parameters()) + list(ours.neck.parameters())
    for k, k0, q in zip(ours.key_encoder.parameters(), k_before, q_params):
        torch.testing.assert_close(k, m * k0 + (1 - m) * q, atol=1e-6,
                                   rtol=1e-5)
    # Buffers (BN running statistics) are copied at each update, not
    # averaged (the key forward then moves the key copy's statistics, so
    # look right after an update).
    ours.key_encoder.update(dict(backbone=ours.backbone, neck=ours.neck))
    for b_k, b_q in zip(ours.key_encoder.backbone.buffers(),
                        ours.backbone.buffers()):
        assert torch.equal(b_k, b_q)


@pytest.mark.parametrize('method', ['mocov2', 'densecl'])
def test_default_momentum_matches(method):
    """The paper's setting (mmpretrain 0.001 == mmmask 0.999) agrees too."""
    ref, ours = build_pair(method, momentum=0.001, seed=3)
    assert ours.key_encoder.momentum == pytest.approx(0.999)
    ref.train()
    ours.train()
    opt_ref, opt_ours = sgd(ref), sgd(ours)
    for it in range(2):
        views = make_views(64, seed=200 + it)
        ref_losses = ref.loss([v.clone() for v in views], [])
        our_losses = ours.loss([v.clone() for v in views], None)
        assert_losses_equal(method, ref_losses, our_losses)
        for model, losses, opt in ((ref, ref_losses, opt_ref),
                                   (ours, our_losses, opt_ours)):
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()
        assert_states_equal(method, ref, ours, f'iter {it}')
        ours.load_state_dict(mmpretrain_to_mmmask(ref.state_dict(), method))


@pytest.mark.parametrize('method', ['mocov2', 'densecl'])
def test_key_bn_modes_equal_in_one_process(method):
    """Shuffle BN only permutes the batch across ranks: in one process
    'none', 'shuffle' and 'sync' (which falls back to BN without CUDA DDP)
    give the same loss, and the same as mmpretrain's (which does shuffle the
    batch even in one process)."""
    ref, _ = build_pair(method)
    state = mmpretrain_to_mmmask(ref.state_dict(), method)
    views = make_views(64, seed=11)
    ref.train()
    ref_losses = ref.loss([v.clone() for v in views], [])
    results = {}
    for key_bn in ('none', 'shuffle', 'sync'):
        if key_bn == 'sync':
            with pytest.warns(UserWarning, match='SyncBN'):
                model = build_mmmask(method, key_bn=key_bn)
        else:
            model = build_mmmask(method, key_bn=key_bn)
        model.load_state_dict(state, strict=True)
        model.train()
        results[key_bn] = model.loss([v.clone() for v in views], None)
        assert_losses_equal(method, ref_losses, results[key_bn])
    for key_bn in ('shuffle', 'sync'):
        for name, value in results['none'].items():
            torch.testing.assert_close(results[key_bn][name], value,
                                       atol=1e-6, rtol=0)
