"""MaskCo (docs/methods.md section 4).

* RoIAlign features of the same region in both views of an identity
  augmentation are equal (query backbone vs key encoder); with crops and
  flips, the region's pixels themselves agree after mapping;
* the loss equals a direct computation (masking, MPH, torchvision's
  roi_align, the neck, cat + cross-entropy), same-image negatives included;
* samples whose views did not overlap are left out of the loss and of the
  queue, also when two gloo ranks keep different numbers of keys;
* missing pipeline keys are one clear error.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (TINY_C5, build_mmmask_model, on_two_gloo_ranks,
                     real_photos, tiny_resnet18)
from torchvision.ops import roi_align

import mmmask.datasets  # noqa: F401
from mmmask.models.algorithms import region_features
from mmmask.registry import TRANSFORMS

TAU = 0.2


def tiny_maskco(**kw):
    cfg = dict(type='MaskCo', backbone=tiny_resnet18(),
               neck=dict(type='MLPProjectionNeck', in_channels=TINY_C5,
                         hid_channels=32, out_channels=16),
               head=dict(type='InfoNCEHead', temperature=TAU),
               mask_head=dict(type='MaskPredictionHead',
                              in_channels=TINY_C5),
               queue_len=32, feat_dim=16, key_bn='none')
    cfg.update(kw)
    return build_mmmask_model(cfg)


def pipeline(view_transforms, **region):
    return [TRANSFORMS.build(dict(type='GeometricMultiView', num_views=2,
                                  transforms=[view_transforms])),
            TRANSFORMS.build(dict(type='SampleOverlapRegion', **region)),
            TRANSFORMS.build(dict(type='PackInputs', algorithm_keys=[
                'view_geometry', 'regions', 'region_valid',
                'neg_regions']))]


def make_batch(view_transforms, n=4, seed=0, **region):
    photos = list(real_photos().values())
    steps = pipeline(view_transforms, **region)
    np.random.seed(seed)
    inputs, samples = [[], []], []
    for i in range(n):
        res = dict(img=photos[i % len(photos)][..., ::-1].copy())
        for t in steps:
            res = t(res)
        for v in range(2):
            inputs[v].append(res['inputs'][v].float())
        samples.append(res['data_samples'])
    mean = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1)
    views = [(torch.stack(v) - mean) / std for v in inputs]
    return views, samples


def test_identity_views_give_equal_region_features():
    model = tiny_maskco()
    views, samples = make_batch([])  # no transform: both views = the image
    regions = torch.stack([torch.as_tensor(s.regions) for s in samples])
    assert torch.equal(regions[:, 0], regions[:, 1])
    assert torch.equal(views[0], views[1])
    model.key_encoder.update(dict(backbone=model.backbone, neck=model.neck))
    with torch.no_grad():
        fq = model.backbone(views[0])[-1]
        fk = model.key_forward(views[1], with_neck=False)[0][-1]
        size = views[0].shape[-1]
        rq = region_features(fq, regions[:, 0], size)
        rk = region_features(fk, regions[:, 1], size)
    assert rq.shape == (4, TINY_C5, 7, 7)
    assert torch.allclose(rq, rk, atol=1e-6)
    assert rq.abs().sum() > 0


def test_region_pixels_agree_across_cropped_and_flipped_views():
    view = [dict(type='RandomResizedCrop', scale=64,
                 crop_ratio_range=(0.4, 1.0)),
            dict(type='RandomFlip', prob=0.5)]
    views, samples = make_batch(view, n=8, seed=1)
    flips = 0
    for i, s in enumerate(samples):
        if not s.region_valid:
            continue
        ga, gb = s.view_geometry
        boxes = torch.as_tensor(s.regions)
        # RoIAlign on the pixels themselves (stride 1)
        a = region_features(views[0][i:i + 1], boxes[0:1], 64)[0]
        b = region_features(views[1][i:i + 1], boxes[1:2], 64)[0]
        if ga.flip != gb.flip:
            b = b.flip(-1)
            flips += 1
        # resampling differences only (a wrong box gives 0.2-1.5 here)
        assert (a - b).abs().mean() < 0.1, i
    assert flips > 0


def loss_setup():
    """(model, views, samples) of the direct-computation test (also the
    CUDA test's MaskCo case, tests/test_cuda.py)."""
    torch.manual_seed(0)
    model = tiny_maskco(use_same_image_negatives=True)
    view = [dict(type='RandomResizedCrop', scale=64,
                 crop_ratio_range=(0.4, 1.0)),
            dict(type='RandomFlip', prob=0.5)]
    views, samples = make_batch(view, n=4, seed=2, num_neg_regions=2)
    return model, views, samples


def test_loss_equals_a_direct_computation():
    model, views, samples = loss_setup()
    queue = model.queue.negatives().clone()
    loss = model.loss(views, samples)['loss_region']

    # by hand; the first EMA update copies the online weights
    mask = torch.stack([torch.as_tensor(s.mask) for s in samples])
    boxes = torch.stack([torch.as_tensor(s.regions) for s in samples])
    negs = torch.stack([torch.as_tensor(s.neg_regions) for s in samples])
    x_q = views[0].masked_fill(mask[:, None], 0.0)  # dataset-mean fill
    f = model.backbone(x_q)[-1]
    f = torch.relu(model.mask_head.convs(f) + f)  # MPH, residual block
    scale = f.shape[-1] / 64

    def rois(boxes_per_image):  # (N, K, 4) -> (N K, 5) with batch index
        n, k = boxes_per_image.shape[:2]
        idx = torch.arange(n).repeat_interleave(k).float()[:, None]
        return torch.cat([idx, boxes_per_image.reshape(-1, 4)], 1)

    def project(feat):
        return F.normalize(model.neck([feat])[0], dim=1)

    q = project(roi_align(f, rois(boxes[:, :1]), 7, scale, 2, True))
    with torch.no_grad():
        fk = model.backbone(views[1])[-1]
        k = project(roi_align(fk, rois(boxes[:, 1:2]), 7, scale, 2, True))
        kn = project(roi_align(fk, rois(negs), 7, scale, 2, True))
    kn = kn.view(4, 2, -1)
    logits = torch.cat([(q * k).sum(1, keepdim=True),
                        q @ queue.t(),
                        torch.einsum('nc,nkc->nk', q, kn)], dim=1) / TAU
    expected = F.cross_entropy(logits, torch.zeros(4, dtype=torch.long))
    assert torch.allclose(loss, expected, atol=1e-5)
    # the keys went into the queue (after the step's read)
    model.queue.flush()
    assert torch.allclose(model.queue.feats[:4], k, atol=1e-6)


def half_invalid_batch():
    """(model, ref, views, samples): two equal tiny MaskCo models in eval
    mode (BN on running statistics: rows independent of the batch) and a
    batch of 4 whose samples 1 and 3 have no overlap region."""
    torch.manual_seed(0)
    model = tiny_maskco()
    views, samples = make_batch([], n=4)
    samples[1].region_valid = False
    samples[3].region_valid = False
    ref = tiny_maskco()
    ref.load_state_dict(model.state_dict())
    model.eval()
    ref.eval()
    return model, ref, views, samples


def test_samples_without_overlap_are_left_out():
    model, ref, views, samples = half_invalid_batch()
    full = model.loss(views, samples)['loss_region']
    keep = [0, 2]
    part = ref.loss([v[keep] for v in views],
                    [samples[i] for i in keep])['loss_region']
    assert torch.allclose(full, part, atol=1e-5)
    for s in samples:
        s.region_valid = False
    zero = tiny_maskco().loss(views, samples)['loss_region']
    assert zero.item() == 0.0 and zero.requires_grad


def test_missing_region_keys_are_a_clear_error():
    model = tiny_maskco()
    views, samples = make_batch([], n=2)
    for s in samples:
        del s.regions
    with pytest.raises(KeyError, match='SampleOverlapRegion'):
        model.loss(views, samples)


def test_mask_prediction_head_shape_and_error():
    from mmmask.registry import MODELS
    mph = MODELS.build(dict(type='MaskPredictionHead', in_channels=16))
    x = torch.randn(2, 16, 5, 5)
    assert mph(x).shape == x.shape
    # a ResNet-style block that starts as the identity on C5 (>= 0), also
    # after init_weights (ConvModule resets norm scales to 1)
    mph.init_weights()
    mph.train()
    c5 = x.relu()
    assert torch.equal(mph(c5), c5)
    assert not mph.convs[-1].with_activation  # the ReLU is after the add
    with torch.no_grad():
        mph.convs[-1].norm.weight.fill_(1.0)
    assert not torch.allclose(mph(c5), c5)
    plain = MODELS.build(dict(type='MaskPredictionHead', in_channels=16,
                              residual=False))
    plain.init_weights()
    assert (plain(x) >= 0).all() and not torch.allclose(plain(x), x.relu())
    with pytest.raises(ValueError, match='in_channels=16'):
        mph(torch.randn(2, 8, 5, 5))


@pytest.mark.parametrize('outside', [False, True])
@pytest.mark.parametrize('sampling_ratio', [1, 2, 3])
@pytest.mark.parametrize('aligned', [True, False])
def test_roi_align_equals_torchvisions(aligned, sampling_ratio, outside):
    """Values and gradients, on boxes inside the 56 x 72 px image or
    reaching beyond it (torchvision's zero beyond [-1, size])."""
    from mmmask.models.utils import roi_align as ours
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(3, 8, 7, 9, generator=g, requires_grad=True)
    lo = -30. if outside else 0.
    x0 = lo + torch.rand(16, generator=g) * (60 - lo)
    y0 = lo + torch.rand(16, generator=g) * (45 - lo)
    hi = 40. if outside else 0.
    rois = torch.stack([
        torch.randint(0, 3, (16, ), generator=g).float(), x0, y0,
        x0 + 1 + torch.rand(16, generator=g) * (71 + hi - x0),
        y0 + 1 + torch.rand(16, generator=g) * (55 + hi - y0)], dim=1)
    a = ours(feat, rois, 7, 1 / 8, sampling_ratio, aligned)
    b = roi_align(feat, rois, 7, 1 / 8, sampling_ratio, aligned)
    assert torch.allclose(a, b, atol=1e-5)
    ga, = torch.autograd.grad(a.sum(), feat)
    gb, = torch.autograd.grad(b.sum(), feat)
    assert torch.allclose(ga, gb, atol=1e-4)


def test_samples_without_overlap_add_no_key_to_the_queue():
    """Issue 16 item 7: only the valid samples' keys are enqueued (today's
    code enqueued all four, the invalid ones near-constant)."""
    model, ref, views, samples = half_invalid_batch()
    before = model.queue.negatives().clone()
    model.loss(views, samples)
    keep = [0, 2]
    ref.loss([v[keep] for v in views], [samples[i] for i in keep])
    model.queue.flush()
    ref.queue.flush()
    assert int(model.queue.ptr) == 2
    assert torch.allclose(model.queue.feats[:2], ref.queue.feats[:2],
                          atol=1e-6)
    assert torch.equal(model.queue.feats[2:], before[2:])  # untouched
    for s in samples:
        s.region_valid = False
    model.loss(views, samples)
    model.queue.flush()
    assert int(model.queue.ptr) == 2  # nothing valid: nothing enqueued


def _queue_worker(rank):
    from mmmask.models.utils import FeatureQueue
    queue = FeatureQueue(8, 4)
    with torch.no_grad():
        queue.feats.zero_()
    keys = torch.arange(12.).view(3, 4) + 100 * rank
    # rank 0 keeps 2 keys, rank 1 one: different counts per rank
    valid = torch.tensor([[True, False, True], [False, False, True]][rank])
    queue.enqueue(keys, valid)
    queue.enqueue(keys[:2], torch.zeros(2, dtype=torch.bool))  # none
    queue.flush()
    return dict(feats=queue.feats, ptr=queue.ptr)


def test_queue_with_different_valid_counts_on_two_gloo_ranks(tmp_path):
    r0, r1 = on_two_gloo_ranks(_queue_worker, tmp_path)
    keys = torch.arange(12.).view(3, 4)
    expected = torch.zeros(8, 4)
    expected[:3] = torch.stack([keys[0], keys[2], keys[2] + 100])
    for r in (r0, r1):  # the same queue on every rank, rank order
        assert int(r['ptr']) == 3
        assert torch.equal(r['feats'], expected)
