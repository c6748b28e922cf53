"""MACRL (mmmask/models/algorithms/macrl.py) on the tiny demo model
(configs/demo/macrl_vit-tiny_demo.py: 32 px, 4 px patches, 8 x 8 tokens):

* the strong / weak branches mask the configured ratios (token counts seen
  by the shared encoder);
* the L1 reconstruction only looks at masked patches;
* both terms equal a loop-by-loop computation (tests/vit_direct.py) with
  the queues' negatives, tau and lambda_rec; the queues get each branch's
  features (keys of the EMA key encoder with ``momentum``, which gets no
  gradient and moves by the EMA rule);
* the CIFAR / ImageNet-subset configs carry the documented defaults.
"""
import os.path as osp

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from vit_direct import (ROOT, build, decode, demo_model_cfg, encode_visible,
                        info_nce_rows, masked_error, patch_targets,
                        restart_mask_stream)


def macrl_cfg(**kw):
    return demo_model_cfg('macrl_vit-tiny_demo', **kw)


def views(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, 32, 32, generator=g),
            torch.randn(n, 3, 32, 32, generator=g)]


@pytest.mark.parametrize('strong,weak,visible', [
    (0.75, 0.5, (16, 32)), (0.6, 0.0, (26, 64))])
def test_branches_use_their_mask_ratios(strong, weak, visible):
    model = build(macrl_cfg(strong_mask=dict(mask_ratio=strong),
                            weak_mask=dict(mask_ratio=weak)))
    seen = []
    model.backbone.layers[0].register_forward_pre_hook(
        lambda mod, args: seen.append(tuple(args[0].shape)) and None)
    losses = model.loss(views(), None)
    assert seen == [(4, 1 + visible[0], 64), (4, 1 + visible[1], 64)]
    assert torch.isfinite(losses['loss_rec'])


def test_l1_only_on_masked_patches(monkeypatch):
    """Changing the decoder's output on visible patches leaves loss_rec
    as it is; changing it on one masked patch changes it."""
    model = build(macrl_cfg())
    imgs = views()

    def run(offset_where):
        restart_mask_stream(model)  # the same masks in every run
        orig = type(model.decoder_strong).forward

        def forward(dec, x, mask):
            out = orig(dec, x, mask)
            where = offset_where(mask.flatten(1))
            return out + 100.0 * where[..., None].to(out.dtype)

        monkeypatch.setattr(type(model.decoder_strong), 'forward', forward)
        out = model.loss(imgs, None)['loss_rec']
        monkeypatch.undo()
        return out

    base = run(lambda m: torch.zeros_like(m))
    visible = run(lambda m: ~m)
    one_masked = run(lambda m: m & (m.cumsum(1) == 1))  # first masked token
    assert torch.allclose(visible, base)
    assert float((one_masked - base).detach()) > 1.0


def test_loss_equals_direct_computation():
    model = build(macrl_cfg(lambda_rec=0.5, temperature=0.3, momentum=None))
    imgs = views(seed=1)
    neg_s = model.queue_strong.negatives().clone()
    neg_w = model.queue_weak.negatives().clone()
    rng = restart_mask_stream(model)
    losses = model.loss(imgs, None)
    # the same masks: strong batch, then weak batch
    masks = [model.mask_generators[b].batch(4, rng=rng)
             for b in ('strong', 'weak')]

    zs, recs = [], []
    for img, mask, dec in zip(imgs, masks, (model.decoder_strong,
                                            model.decoder_weak)):
        latent = encode_visible(model.backbone, img, mask)
        zs.append(F.normalize(model.projector(latent[:, 1:].mean(1)), dim=1))
        pred = decode(dec, latent, mask)
        recs.append(masked_error(pred, patch_targets(img, 4), mask, 'l1'))
    z_s, z_w = zs
    l_con = 0.5 * (info_nce_rows(z_s, z_w, None, 0.3, negatives=neg_w) +
                   info_nce_rows(z_w, z_s, None, 0.3, negatives=neg_s))
    l_rec = 0.5 * (recs[0] + recs[1])
    torch.testing.assert_close(losses['loss_con'], l_con)
    torch.testing.assert_close(losses['loss_rec'], 0.5 * l_rec)
    assert float(l_rec.detach()) > 0.1
    # each branch's features went into its own queue
    torch.testing.assert_close(model.queue_strong.negatives()[:4],
                               z_s.detach())
    torch.testing.assert_close(model.queue_weak.negatives()[:4],
                               z_w.detach())
    assert int(model.queue_strong.ptr) == 4


def test_detach_positive_changes_gradients_not_the_loss():
    def run(detach):
        model = build(macrl_cfg(lambda_rec=0.0, detach_positive=detach,
                                momentum=None))
        outs = []
        model.projector.register_forward_hook(
            lambda mod, args, out: outs.append(out) and None)
        restart_mask_stream(model)
        loss = model.loss(views(), None)['loss_con']
        return loss, torch.autograd.grad(loss, outs)

    loss_a, grads_a = run(False)
    loss_b, grads_b = run(True)
    torch.testing.assert_close(loss_a, loss_b)
    for a, b in zip(grads_a, grads_b):
        assert a.abs().sum() > 0 and b.abs().sum() > 0
        assert not torch.allclose(a, b)


def test_unknown_rec_loss_is_an_error():
    with pytest.raises(ValueError, match="rec_loss must be 'l1' or 'mse'"):
        build(macrl_cfg(rec_loss='l2'))


@pytest.mark.parametrize('name,dataset,grid', [
    ('macrl_vit-s-p4_cifar10', 'CIFAR10', 8),
    ('macrl_vit-s-p4_cifar100', 'CIFAR100', 8),
    ('macrl_vit-s-p16_in100', 'ImageNet', 14)])
def test_configs_carry_the_documented_defaults(name, dataset, grid):
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name + '.py'))
    m = cfg.model
    assert m.type == 'MACRL'
    assert (m.temperature, m.lambda_rec, m.rec_loss) == (0.2, 1.0, 'l1')
    assert m.momentum == 0.99
    assert m.strong_mask == dict(type='RandomPatchMask', input_size=grid,
                                 mask_ratio=0.75)
    assert m.weak_mask.mask_ratio == 0.5
    assert m.backbone.patch_size * grid == m.backbone.img_size
    assert m.decoder.num_patches == grid * grid
    assert cfg.train_dataloader.dataset.type == dataset
    if dataset.startswith('CIFAR'):
        root = cfg.train_dataloader.dataset.data_root
        assert root == 'data/' + dataset.lower()


def test_momentum_key_encoder_gives_keys_and_moves_by_ema():
    """With ``momentum`` m the positives and the queued keys come from an
    EMA copy of (backbone, projector) on the same views and masks; it gets
    no gradient and follows ``theta_k <- m theta_k + (1 - m) theta``."""
    m = 0.9
    model = build(macrl_cfg(lambda_rec=0.0, momentum=m))
    key = model.key_encoder
    assert key.momentum == m
    assert all(not p.requires_grad for p in key.parameters())
    imgs = views(seed=2)
    neg_s = model.queue_strong.negatives().clone()
    neg_w = model.queue_weak.negatives().clone()
    rng = restart_mask_stream(model)
    loss = model.loss(imgs, None)['loss_con']
    masks = [model.mask_generators[b].batch(4, rng=rng)
             for b in ('strong', 'weak')]
    # the first update copies the online weights: keys = online features
    # through the key copy (same BN batch statistics in train mode)
    zs, ks = [], []
    for img, mask in zip(imgs, masks):
        zs.append(F.normalize(model.projector(
            encode_visible(model.backbone, img, mask)[:, 1:].mean(1)), dim=1))
        with torch.no_grad():
            ks.append(F.normalize(key.projector(
                encode_visible(key.backbone, img, mask)[:, 1:].mean(1)),
                dim=1))
    direct = 0.5 * (info_nce_rows(zs[0], ks[1], None, 0.2, negatives=neg_w) +
                    info_nce_rows(zs[1], ks[0], None, 0.2, negatives=neg_s))
    torch.testing.assert_close(loss, direct)
    loss.backward()  # before reading the queues (written in place)
    torch.testing.assert_close(model.queue_strong.negatives()[:4], ks[0])
    torch.testing.assert_close(model.queue_weak.negatives()[:4], ks[1])
    assert all(p.grad is None for p in key.parameters())
    assert model.backbone.patch_embed.projection.weight.grad.abs().sum() > 0
    online = dict(model.backbone.named_parameters())
    before = {n: p.detach().clone() for n, p in
              key.backbone.named_parameters()}
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.add_(torch.randn_like(p))
    model.loss(imgs, None)  # second step: one EMA update
    for n, p in key.backbone.named_parameters():
        torch.testing.assert_close(p, m * before[n] + (1 - m) * online[n])


def test_without_momentum_the_online_features_are_the_keys():
    model = build(macrl_cfg(momentum=None))
    assert model.key_encoder is None


# ------------------------------------------------- CIFAR colour order
def _cifar_preprocessor(name):
    """The CIFAR config's data preprocessor with the strong view's grayscale
    always applied and no colour jitter, and normalisation off (mean 0,
    std 1), so its output is the augmented pixels."""
    import copy

    import mmmask.models  # noqa: F401
    from mmengine.config import Config
    from mmmask.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name + '.py'))
    pre = copy.deepcopy(cfg.model.data_preprocessor.to_dict())
    assert pre['input_order'] == 'rgb', 'CIFAR arrays are RGB'
    strong = []
    for t in pre['view_augments'][0]:
        if t['type'] == 'BatchColorJitter':
            continue
        if t['type'] == 'BatchRandomGrayscale':
            t['prob'] = 1.0
        if t['type'] == 'BatchRandomFlip':
            t['prob'] = 0.0
        strong.append(t)
    assert any(t['type'] == 'BatchRandomGrayscale' for t in strong)
    pre.update(view_augments=[strong, []], mean=[0., 0., 0.],
               std=[1., 1., 1.])
    return MODELS.build(pre)


@pytest.mark.parametrize('name', ['macrl_vit-s-p4_cifar10',
                                  'macrl_vit-s-p4_cifar100'])
def test_cifar_grayscale_is_the_luma_of_the_rgb_array(name):
    """mmpretrain's CIFAR arrays are RGB: the configs' grayscale gives the
    RGB luma 0.299 R + 0.587 G + 0.114 B (a pure red image: 0.299 * 255
    grey, not 0.114 * 255)."""
    pre = _cifar_preprocessor(name)
    red = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    red[:, 0] = 255  # R of an RGB array
    rgb = torch.from_numpy(np.random.default_rng(0).integers(
        0, 256, (2, 3, 32, 32), np.uint8))
    for img in (red, rgb):
        out = pre(dict(inputs=[img.clone(), img.clone()]),
                  training=True)['inputs'][0].double()
        luma = torch.einsum('nchw,c->nhw', img.double(),
                            torch.tensor([0.299, 0.587, 0.114],
                                         dtype=torch.float64))
        for c in range(3):
            # mmcv's weights (0.2989, ...) and uint8 truncation: within 1.5
            assert (out[:, c] - luma).abs().max() <= 1.5
