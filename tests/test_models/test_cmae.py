"""CMAE (mmmask/models/algorithms/cmae.py) on the tiny demo model
(configs/demo/cmae_vit-tiny_demo.py: 32 px, 4 px patches, 8 x 8 tokens,
0.65 over 2 x 2 blocks -> 5 of 16 blocks = 20 of 64 tokens visible):

* the online encoder sees only the visible tokens, the target encoder all;
* both loss terms equal a loop-by-loop computation of CMAE's formula
  (tests/vit_direct.py), with the weights and the 2 tau factor;
* the target encoder gets no gradient and moves by EMA only;
* in two gloo processes the contrastive term uses the keys of both ranks;
* the pixel-shift views: the shift is in range, is the recorded one, and
  the target view is the online view shifted by it.
"""
import json
import os.path as osp
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from vit_direct import (ROOT, build, decode, demo_model_cfg, encode_visible,
                        info_nce_rows, masked_error, patch_targets,
                        restart_mask_stream)

TAU = 0.07


def cmae_cfg(**kw):
    return demo_model_cfg('cmae_vit-tiny_demo', **kw)


def samples_with(masks):
    from mmpretrain.structures import DataSample
    return [DataSample().set_mask(m) for m in masks]


def draw(model, n, seed):
    return model.mask_generator.batch(n, rng=seed)  # (N, 8, 8)


def direct_cmae(model, img_o, img_t, mask, rank=0, others=()):
    """(L_rec, L_ct) from the formula, token by token. ``others``: the
    target views of the other ranks, in rank order with this one's
    inserted at ``rank``."""
    latent = encode_visible(model.backbone, img_o, mask)
    pred = decode(model.pixel_decoder, latent, mask)
    l_rec = masked_error(pred, patch_targets(img_o, 4), mask, 'mse')
    feat = decode(model.feature_decoder, latent, mask).mean(1)
    q = model.predictor(model.projector(feat))
    views = list(others)
    views.insert(rank, img_t)
    with torch.no_grad():
        keys = []
        for view in views:  # each rank's batch through the target
            t = encode_visible(model.target.backbone, view, None,
                               final_norm=False)[:, 1:].mean(1)
            keys.append(model.target.projector(t))
        keys = torch.cat(keys)
    n = img_o.shape[0]
    l_ct = info_nce_rows(q, keys, [rank * n + i for i in range(n)], TAU)
    return l_rec, l_ct


def test_online_sees_only_visible_tokens_target_sees_all():
    model = build(cmae_cfg())
    seen = {}

    def hook(name):
        def record(mod, args):
            seen.setdefault(name, tuple(args[0].shape))
        return record

    model.backbone.layers[0].register_forward_pre_hook(hook('online'))
    model.target.backbone.layers[0].register_forward_pre_hook(hook('target'))
    imgs = [torch.randn(3, 3, 32, 32), torch.randn(3, 3, 32, 32)]
    model.loss(imgs, None)
    assert seen['online'] == (3, 1 + 20, 64)  # cls + 5 blocks of 2 x 2
    assert seen['target'] == (3, 1 + 64, 64)


def test_loss_equals_direct_computation():
    model = build(cmae_cfg(rc_weight=0.7, ct_weight=1.3))
    g = torch.Generator().manual_seed(1)
    img_o, img_t = torch.randn(4, 3, 32, 32, generator=g), \
        torch.randn(4, 3, 32, 32, generator=g)
    mask = draw(model, 4, seed=2)
    losses = model.loss([img_o, img_t], samples_with(mask))
    # the target copied the online weights at its first update: direct
    # computation after the step sees the same target weights
    l_rec, l_ct = direct_cmae(model, img_o, img_t, mask)
    torch.testing.assert_close(losses['loss_rec'], 0.7 * l_rec)
    torch.testing.assert_close(losses['loss_ct'], 1.3 * 2 * TAU * l_ct)
    assert 1.0 < float(l_ct.detach()) < 10.0  # a real InfoNCE value
    assert set(losses) == {'loss_rec', 'loss_ct'}


def test_mask_from_generator_when_pipeline_gives_none():
    model = build(cmae_cfg())
    expected = model.mask_generator.batch(2, rng=restart_mask_stream(model))
    got = []
    orig = model.backbone.encode
    model.backbone.encode = lambda x, m=None, **k: (got.append(m),
                                                    orig(x, m, **k))[1]
    model.loss([torch.randn(2, 3, 32, 32)] * 2, None)
    assert torch.equal(got[0], expected)
    assert int((~got[0]).sum()) == 2 * 20


def test_target_gets_no_gradient_and_moves_by_ema():
    model = build(cmae_cfg(momentum=0.9))
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                          lr=0.5)
    imgs = [torch.randn(4, 3, 32, 32), torch.randn(4, 3, 32, 32)]
    online = dict(backbone=model.backbone, projector=model.projector)

    def snapshot(mods):
        return {f'{k}.{n}': p.detach().clone() for k, m in mods.items()
                for n, p in m.named_parameters()}

    sum(model.loss(imgs, None).values()).backward()
    target = dict(backbone=model.target.backbone,
                  projector=model.target.projector)
    for p in model.target.parameters():
        assert not p.requires_grad and p.grad is None
    # first update: an exact copy of the online weights
    for k, v in snapshot(target).items():
        torch.testing.assert_close(v, snapshot(online)[k], rtol=0, atol=0)
    opt.step()
    before_t, after_o = snapshot(target), snapshot(online)
    moved = 0
    for k in before_t:
        moved += int(not torch.equal(before_t[k], after_o[k]))
    assert moved > 10  # the step changed the online weights
    opt.zero_grad()
    sum(model.loss(imgs, None).values()).backward()
    for k, v in snapshot(target).items():
        expected = 0.9 * before_t[k] + 0.1 * after_o[k]
        torch.testing.assert_close(v, expected, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- 2 ranks
def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _rank_inputs(rank):
    g = torch.Generator().manual_seed(100 + rank)
    return (torch.randn(3, 3, 32, 32, generator=g),
            torch.randn(3, 3, 32, 32, generator=g))


def _worker(rank, port, out_dir):
    import torch.distributed as dist
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=2)
    try:
        model = build(cmae_cfg())  # same seed: same weights on both ranks
        img_o, img_t = _rank_inputs(rank)
        mask = draw(model, 3, seed=10 + rank)
        losses = model.loss([img_o, img_t], samples_with(mask))
        other = _rank_inputs(1 - rank)[1]
        _, l_ct = direct_cmae(model, img_o, img_t, mask, rank, [other])
        _, l_local = direct_cmae(model, img_o, img_t, mask)
        with open(osp.join(out_dir, f'{rank}.json'), 'w') as f:
            json.dump(dict(loss_ct=float(losses['loss_ct']),
                           direct=float(2 * TAU * l_ct),
                           local_only=float(2 * TAU * l_local)), f)
    finally:
        dist.destroy_process_group()


def test_contrastive_term_gathers_keys_of_all_ranks(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=2)
    for rank in range(2):
        with open(tmp_path / f'{rank}.json') as f:
            r = json.load(f)
        assert r['loss_ct'] == pytest.approx(r['direct'], rel=1e-5)
        # the other rank's keys are really among the negatives
        assert abs(r['loss_ct'] - r['local_only']) > 1e-3


# ---------------------------------------------------------- pixel shift
def _shift_transform(crop=24, shift=8, colour=False):
    import mmmask.datasets  # noqa: F401
    from mmmask.registry import TRANSFORMS
    target = [dict(type='RandomGrayscale', prob=1.0, keep_channels=True,
                   channel_weights=(0.114, 0.587, 0.2989))] if colour else []
    return TRANSFORMS.build(dict(
        type='PixelShiftViews', crop_size=crop, max_shift=shift,
        base_transforms=[
            dict(type='RandomResizedCrop', scale=crop + shift,
                 crop_ratio_range=(0.2, 1.), interpolation='bicubic',
                 backend='pillow'),
            dict(type='RandomFlip', prob=0.5)],
        target_transforms=target))


def test_pixel_shift_in_range_recorded_and_applied():
    from mmpretrain.datasets.transforms import PackInputs
    t = _shift_transform()
    pack = PackInputs(algorithm_keys=['pixel_shift'])
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)
    np.random.seed(0)
    shifts = []
    for _ in range(60):
        out = t(dict(img=img.copy(), img_shape=img.shape[:2]))
        online, target = out['img']
        dh, dw = out['pixel_shift']
        assert online.shape == target.shape == (24, 24, 3)
        assert 0 <= dh < 8 and 0 <= dw < 8
        # online (y + dh, x + dw) == target (y, x) on the overlap
        assert np.array_equal(online[dh:, dw:], target[:24 - dh, :24 - dw])
        shifts.append((int(dh), int(dw)))
        packed = pack(out)
        assert packed['data_samples'].pixel_shift.tolist() == [dh, dw]
        assert len(packed['inputs']) == 2
    assert len(set(shifts)) > 20  # drawn, both axes vary
    assert {s[0] for s in shifts} == set(range(8))


def test_pixel_shift_colour_only_on_target():
    t = _shift_transform(colour=True)
    img = np.random.default_rng(1).integers(0, 255, (40, 40, 3), np.uint8)
    np.random.seed(1)
    online, target = t(dict(img=img, img_shape=(40, 40)))['img']
    assert not np.array_equal(online[..., 0], online[..., 1])  # colour kept
    assert np.array_equal(target[..., 0], target[..., 1])  # gray


def test_pixel_shift_too_small_base_crop_is_an_error():
    t = _shift_transform()
    t.max_shift = 20
    with pytest.raises(ValueError, match='need at least 43 x 43'):
        t(dict(img=np.zeros((60, 60, 3), np.uint8), img_shape=(60, 60)))


def test_cmae_recipe_config():
    """The paper config: the spec's numbers are the config's."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'cmae_vit-base-p16.py'))
    m = cfg.model
    assert (m.momentum, m.temperature, m.rc_weight, m.ct_weight) == \
        (0.996, 0.07, 1.0, 1.0)
    assert m.mask_generator == dict(type='BlockRandomMask', input_size=14,
                                    block_size=2, mask_ratio=0.65)
    assert (m.pixel_decoder.decoder_depth, m.pixel_decoder.decoder_embed_dim,
            m.pixel_decoder.decoder_num_heads) == (8, 512, 16)
    assert m.feature_decoder.decoder_depth == 2
    assert m.feature_decoder.predict_feature_dim == 768
    assert (m.projector.in_channels, m.projector.hid_channels,
            m.projector.out_channels) == (768, 1536, 256)
    assert (m.predictor.in_channels, m.predictor.out_channels) == (256, 256)
    opt = cfg.optim_wrapper
    assert opt.type == 'AmpOptimWrapper'
    assert opt.optimizer.betas == (0.9, 0.95)
    assert opt.optimizer.weight_decay == 0.05
    batch = cfg.train_dataloader.batch_size * cfg.num_gpus
    assert batch == 4096
    assert opt.optimizer.lr == pytest.approx(1.5e-4 * batch / 256)
    assert cfg.param_scheduler[0].end == 40
    shift = cfg.train_dataloader.dataset.pipeline[1]
    assert shift.type == 'PixelShiftViews'
    assert (shift.crop_size, shift.max_shift) == (224, 32)
    assert shift.base_transforms[0].scale == 256


def test_no_weight_decay_on_norms_biases_pos_embed_and_tokens():
    """The paper config's paramwise rule (the demo config has the same),
    applied by mmengine's constructor to the tiny CMAE: weight decay 0.05
    on weight matrices only."""
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    paper = Config.fromfile(osp.join(ROOT, 'configs', 'cmae_vit-base-p16.py'))
    demo = Config.fromfile(osp.join(ROOT, 'configs', 'demo',
                                    'cmae_vit-tiny_demo.py'))
    assert (paper.optim_wrapper.paramwise_cfg ==
            demo.optim_wrapper.paramwise_cfg)
    model = build(cmae_cfg())
    optim = build_optim_wrapper(model, demo.optim_wrapper)
    wd = {}
    for group in optim.param_groups:
        for p in group['params']:
            wd[id(p)] = group['weight_decay']
    checked = 0
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        leaf = name.split('.')[-1]
        no_decay = (p.ndim == 1 or leaf in ('pos_embed', 'cls_token',
                                            'mask_token'))
        assert wd[id(p)] == (0.0 if no_decay else 0.05), name
        checked += 1
    assert checked > 50


# ------------------------------------------- projector / predictor norm
def _hidden_norms(model):
    return [model.projector.mlp[1], model.predictor.mlp[1]]


def test_projector_norm_is_syncbn_eps_1e6_falling_back_to_bn():
    """Default: the authors' SyncBN (eps 1e-6); without CUDA DDP it falls
    back to BN (same eps), with one warning per neck."""
    with pytest.warns(UserWarning, match='CMAE.projector: SyncBN') as rec:
        model = build(cmae_cfg())
    assert any('CMAE.predictor: SyncBN' in str(w.message) for w in rec)
    for bn in _hidden_norms(model):
        assert isinstance(bn, torch.nn.modules.batchnorm._BatchNorm)
        assert not isinstance(bn, torch.nn.SyncBatchNorm)
        assert bn.eps == 1e-6
    # the target projector is a copy of the online one (BN too)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm)
                   for m in model.target.modules())


def test_projector_norm_stays_syncbn_under_cuda_ddp(monkeypatch):
    """With CUDA DDP (``fallback_sync_bn`` keeps SyncBN) the necks hold
    SyncBN with eps 1e-6, the target projector too."""
    import mmmask.models.algorithms.cmae as cmae
    monkeypatch.setattr(cmae, 'fallback_sync_bn', lambda module, name: module)
    model = build(cmae_cfg())
    for bn in _hidden_norms(model):
        assert isinstance(bn, torch.nn.SyncBatchNorm) and bn.eps == 1e-6
    assert isinstance(model.target.projector.mlp[1], torch.nn.SyncBatchNorm)


def test_projector_norm_is_a_config_argument():
    model = build(cmae_cfg(proj_norm_cfg=dict(type='BN1d', eps=1e-3)))
    for bn in _hidden_norms(model):
        assert type(bn) is torch.nn.BatchNorm1d and bn.eps == 1e-3
    # a neck's own norm_cfg wins over the model's
    model = build(cmae_cfg(projector=dict(norm_cfg=dict(type='BN1d'))))
    assert type(model.projector.mlp[1]) is torch.nn.BatchNorm1d
    assert model.projector.mlp[1].eps == 1e-5
    assert model.predictor.mlp[1].eps == 1e-6
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'cmae_vit-base-p16.py'))
    assert cfg.model.proj_norm_cfg == dict(type='SyncBN', eps=1e-6)
