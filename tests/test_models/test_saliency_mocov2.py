"""Saliency-guided masking on MoCo v2 (docs/methods.md section 3).

* with a hand-made saliency map, the model masks the query where the
  generator (same stream) says, foreground cells at their true positions,
  and the hard negative only on the foreground;
* the ``hp`` strategy high-passes the views first and then pastes the noise
  (unmasked pixels are exactly the high-passed view); ``blur`` / ``mean``
  as the authors run them; one ``strategy`` switch sets all four parts;
* masks and noise come from the per-rank, per-iteration stream;
* the saliency map of the key encoder is the channel sum of its C5 map;
* the hard negative's similarity alpha * q . k_hn goes to the head, which
  divides it by tau; the whole loss equals a direct computation
  (torch.cat + cross-entropy);
* a frozen saliency backbone loads from a local checkpoint (torchvision or
  mmmask layout), stays in eval mode, gets no gradient; a missing file or a
  wrong architecture is a clear error;
* a short tools/train.py run trains (see tests/test_apis/test_masked_train.py).
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import (TINY_C5, build_mmmask_model, on_two_gloo_ranks,
                     tiny_resnet18)

import mmmask.models  # noqa: F401
from mmmask.models.mask_generators import gaussian_blur
from mmmask.models.utils import StepRandom, step_random, step_seed
from mmmask.registry import MASK_GENERATORS

TAU, ALPHA = 0.2, 2.0


@pytest.fixture
def at_iter(monkeypatch):
    """Pretend a runner is at iteration ``it`` (rank ``rank``)."""
    def set_(it, rank=0):
        monkeypatch.setattr(step_random, 'current_iter', lambda: it)
        monkeypatch.setattr(step_random, 'get_rank', lambda: rank)
    return set_


def tiny_saliency(**kw):
    cfg = dict(type='SaliencyMoCoV2', backbone=tiny_resnet18(),
               neck=dict(type='MLPProjectionNeck', in_channels=TINY_C5,
                         hid_channels=32, out_channels=16),
               head=dict(type='InfoNCEHead', temperature=TAU),
               queue_len=32, feat_dim=16, key_bn='none', alpha=ALPHA)
    cfg.update(kw)
    return build_mmmask_model(cfg)


def handmade_saliency():
    sal = np.ones((7, 7), dtype=np.float32)
    sal[1:6, 4:7] = 9.0  # foreground: a block on the right
    return sal, sal >= sal.mean() - 0.6 * sal.std()


def views(n=4, size=56, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, size, size, generator=g) for _ in range(2)]


def test_masks_follow_a_handmade_saliency_map(at_iter):
    sal, fg = handmade_saliency()
    assert fg[1:6, 4:7].all() and fg.sum() == 15
    qcfg = dict(type='SaliencyGridMaskGenerator', focal_prob=0.0,
                channel_prob=0.5, ratio_range=(0.2, 0.24), base_size=56)
    hcfg = dict(type='ForegroundMaskGenerator', focal_prob=0.0, base_size=56)
    model = tiny_saliency(query_mask=qcfg, hard_negative_mask=hcfg,
                          fill=dict(type='MeanFill', mode='dataset'),
                          hard_negative_fill=dict(type='MeanFill',
                                                  mode='dataset'))
    im_q, im_k = views()
    model.saliency_maps = lambda x: torch.from_numpy(sal)[None].repeat(
        len(x), 1, 1)
    at_iter(3)
    out = model.prepare_views(im_q, im_k)
    # the same draws, straight from the generators, with the stream's seed
    rng = np.random.default_rng(step_seed('saliency_masks', 3, rank=0))
    qgen, hgen = MASK_GENERATORS.build(qcfg), MASK_GENERATORS.build(hcfg)
    q_expected = [qgen(rng, saliency=sal, image_size=(56, 56))
                  for _ in range(4)]
    h_expected = [hgen(rng, saliency=sal, image_size=(56, 56))
                  for _ in range(4)]
    for i in range(4):
        qm = out['query_mask'][i].numpy()
        assert np.array_equal(qm, q_expected[i]['mask'])
        cells = qm.reshape(3, 7, 8, 7, 8).all(axis=(2, 4))
        r = q_expected[i]['ratio']
        n_fg = round(min(r * 15 / 49, 0.55) * 49)
        for c in range(3):
            assert cells[c].sum() == int(49 * r)
            assert (cells[c] & fg).sum() == n_fg  # true positions
        # filled pixels are the fill's (0: dataset mean), the rest untouched
        q = out['query'][i]
        assert (q[torch.from_numpy(qm)] == 0).all()
        assert torch.equal(q[~torch.from_numpy(qm)],
                           im_q[i][~torch.from_numpy(qm)])
        hm = out['hard_negative_mask'][i].numpy()
        assert np.array_equal(hm, h_expected[i]['mask'])
        hcells = hm.reshape(3, 7, 8, 7, 8).all(axis=(2, 4))
        assert not (hcells & ~fg).any()
        assert [int(c.sum()) for c in hcells] == \
            [round(h_expected[i]['ratio'] * 15)] * 3
    assert torch.equal(out['key'], im_k)  # the key view is not masked


def test_saliency_is_the_channel_sum_of_the_key_encoders_c5():
    model = tiny_saliency()
    x = views(n=2, size=224)[0]
    model.key_encoder.update(dict(backbone=model.backbone, neck=model.neck))
    with torch.no_grad():
        c5 = model.key_encoder.backbone(x)[-1]  # (2, 64, 7, 7)
    assert torch.allclose(model.saliency_maps(x), c5.sum(1), atol=1e-4)
    # a smaller map is brought to the grid by nearest neighbour
    small = views(n=2, size=64)[0]
    with torch.no_grad():
        c5 = model.key_encoder.backbone(small)[-1].sum(1, keepdim=True)
    assert torch.allclose(model.saliency_maps(small),
                          F.interpolate(c5, size=(7, 7))[:, 0], atol=1e-4)


def test_saliency_layer_gives_an_earlier_stage_and_stops_there():
    """``saliency_layer='layer1'``: the channel sum of C2 (a 8 x 8 map at
    32 px where C5 is 1 x 1), and the later stages are not run."""
    model = tiny_saliency(saliency_layer='layer1')
    x = views(n=2, size=32)[0]
    model.key_encoder.update(dict(backbone=model.backbone, neck=model.neck))
    net = model.key_encoder.backbone
    with torch.no_grad():
        c2 = net.layer1(net.maxpool(net.relu(net.norm1(net.conv1(x)))))
    ran = []
    net.layer2.register_forward_pre_hook(lambda *a: ran.append(1) and None)
    sal = model.saliency_maps(x)
    assert c2.shape[-2:] == (8, 8) and not ran
    assert torch.allclose(sal, F.adaptive_avg_pool2d(c2.sum(1), 7),
                          atol=1e-4)
    # saliency differs across cells (C5 at 32 px would be one value)
    assert float(sal.flatten(1).std(1).min()) > 0
    with pytest.raises(KeyError, match="saliency_layer 'layer9'.*layer4"):
        tiny_saliency(saliency_layer='layer9')


def test_a_map_coarser_than_the_grid_warns_once():
    model = tiny_saliency()  # C5: 1 x 1 at 32 px
    with pytest.warns(UserWarning, match=r'\(1, 1\).*every cell is '
                      r'foreground.*saliency_layer'):
        model.saliency_maps(views(n=2, size=32)[0])
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        model.saliency_maps(views(n=2, size=32)[0])


def test_hard_negative_logit_and_loss_equal_a_direct_computation(at_iter):
    torch.manual_seed(0)
    model = tiny_saliency()
    im_q, im_k = views(n=6, size=64)
    queue = model.queue.negatives().clone()

    recorded = {}
    loss_fn = model.head.loss

    def spy(q, k, neg, extra=None):
        recorded['extra'] = extra
        return loss_fn(q, k, neg, extra)

    model.head.loss = spy
    at_iter(1)
    loss = model.loss([im_q, im_k])['loss_global']

    # By hand, from the same draws (the same iteration's stream, anew): the
    # first EMA update copies the online weights, so the key encoder is the
    # online encoder here.
    model._random = StepRandom('saliency_masks')
    with torch.no_grad():
        v = model.prepare_views(im_q, im_k)

    def encode(x):
        return F.normalize(model.neck(model.backbone(x))[0], dim=1)

    q = encode(v['query'])
    with torch.no_grad():
        k, k_hn = encode(v['key']), encode(v['hard_negative'])
    hn_logit = ALPHA * (q * k_hn).sum(1, keepdim=True) / TAU
    # the algorithm passes the scaled cosine; the head divides it by tau
    assert torch.allclose(recorded['extra'], hn_logit * TAU, atol=1e-5)
    logits = torch.cat([(q * k).sum(1, keepdim=True) / TAU,
                        q @ queue.t() / TAU, hn_logit], dim=1)
    expected = F.cross_entropy(logits, torch.zeros(6, dtype=torch.long))
    assert torch.allclose(loss, expected, atol=1e-5)
    # without the hard negative the loss is plain MoCo v2 on masked views
    assert not torch.allclose(
        F.cross_entropy(logits[:, :-1], torch.zeros(6, dtype=torch.long)),
        expected, atol=1e-4)


def test_no_hard_negative_option():
    model = tiny_saliency(hard_negative=False)
    out = model.prepare_views(*views(n=2))
    assert 'hard_negative' not in out
    assert torch.isfinite(model.loss(views(n=2))['loss_global'])


def _save_resnet(path, prefix, torchvision_layout=False):
    from mmmask.registry import MODELS
    net = MODELS.build(tiny_resnet18())
    state = {prefix + k: v for k, v in net.state_dict().items()}
    if torchvision_layout:
        state['fc.weight'] = torch.zeros(10, TINY_C5)
        torch.save(state, path)
    else:
        torch.save(dict(state_dict=state, meta=dict()), path)
    return net


@pytest.mark.parametrize('layout', ['mmmask', 'torchvision'])
def test_frozen_saliency_backbone_from_a_local_checkpoint(layout, tmp_path):
    path = str(tmp_path / 'saliency.pth')
    net = _save_resnet(path, 'backbone.' if layout == 'mmmask' else '',
                       torchvision_layout=layout == 'torchvision')
    model = tiny_saliency(saliency_backbone=tiny_resnet18(),
                          saliency_checkpoint=path)
    for k, v in net.state_dict().items():
        assert torch.equal(model.saliency_net.state_dict()[k], v)
    model.train()
    assert not model.saliency_net.training
    assert all(not p.requires_grad for p in model.saliency_net.parameters())
    loss = model.loss(views(n=4))['loss_global']
    loss.backward()
    assert all(p.grad is None for p in model.saliency_net.parameters())
    x = views(n=2)[0]
    with torch.no_grad():
        expected = model.saliency_net(x)[-1].sum(1, keepdim=True)
    assert torch.allclose(model.saliency_maps(x),
                          F.interpolate(expected, size=(7, 7))[:, 0],
                          atol=1e-4)


def test_saliency_checkpoint_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='saliency checkpoint not '
                       'found: /no/such.pth'):
        tiny_saliency(saliency_backbone=tiny_resnet18(),
                      saliency_checkpoint='/no/such.pth')
    path = str(tmp_path / 'r18.pth')
    _save_resnet(path, 'backbone.')
    with pytest.raises(KeyError, match='lacks .* tensors of the saliency '
                       'backbone'):
        tiny_saliency(saliency_backbone=dict(tiny_resnet18(), depth=50),
                      saliency_checkpoint=path)
    # a mis-shaped tensor is named; a DDP-saved file ('module.') loads
    net = _save_resnet(path, 'backbone.')
    state = {'module.backbone.' + k: v for k, v in net.state_dict().items()}
    torch.save(dict(state_dict=state), path)
    model = tiny_saliency(saliency_backbone=tiny_resnet18(),
                          saliency_checkpoint=path)
    assert torch.equal(model.saliency_net.conv1.weight, net.conv1.weight)
    state['module.backbone.conv1.weight'] = torch.zeros(3, 3, 1, 1)
    torch.save(dict(state_dict=state), path)
    with pytest.raises(KeyError, match=r"lacks 0 tensors .* has 1 of other "
                       r"shapes \(e.g. \['conv1.weight'\]\)"):
        tiny_saliency(saliency_backbone=tiny_resnet18(),
                      saliency_checkpoint=path)
    with pytest.raises(ValueError, match='go together'):
        tiny_saliency(saliency_checkpoint=path)
    with pytest.raises(ValueError, match='grid_size=5'):
        tiny_saliency(query_mask=dict(type='SaliencyGridMaskGenerator',
                                      grid_size=5))


# ------------------------------------------------------------ strategies
def _hp(x):
    return x - gaussian_blur(x, 11, 5.0)


def test_hp_filters_the_views_then_pastes_the_noise(at_iter):
    """The authors' order (issue 16 item 1): unmasked pixels of the query
    and of the hard negative are exactly the high-passed views, the masked
    cells hold noise of the configured std (0.18 / 0.14), the key is the
    high-passed key view. Noise first and the filter after (the old order)
    moves unmasked pixels near the cells and smears the noise."""
    model = tiny_saliency()  # strategy 'hp'
    sal, _ = handmade_saliency()
    model.saliency_maps = lambda x: torch.from_numpy(sal)[None].repeat(
        len(x), 1, 1)
    im_q, im_k = views(n=16, size=112, seed=4)
    at_iter(0)
    out = model.prepare_views(im_q, im_k)
    assert torch.equal(out['key'], _hp(im_k))
    for view, mask, src, std in (
            ('query', 'query_mask', im_q, 0.18),
            ('hard_negative', 'hard_negative_mask', im_k, 0.14)):
        m = out[mask]
        assert m.any() and (~m).any()
        assert torch.equal(out[view][~m], _hp(src)[~m])
        vals = out[view][m]
        assert abs(float(vals.std()) - std) < 0.01, view
        assert abs(float(vals.mean())) < 0.01, view


@pytest.mark.parametrize('strategy', ['blur', 'mean'])
def test_blur_and_mean_as_the_authors_run_them(strategy, at_iter):
    """Spatial grid masks only (no focal, no channel-wise, no 0.55 cap),
    unfiltered views, and the hard negative's cells blurred / set to the
    channel mean like the query's (not noise)."""
    model = tiny_saliency(strategy=strategy)
    for gen in (model.query_mask, model.hard_negative_mask):
        assert (gen.focal_prob, gen.channel_prob, gen.max_fg_ratio) == \
            (0.0, 0.0, 1.0)
    assert type(model.fill) is type(model.hard_negative_fill)
    im_q, im_k = views(n=8, size=56, seed=5)
    at_iter(0)
    out = model.prepare_views(im_q, im_k)
    assert torch.equal(out['key'], im_k)  # no high-pass
    for view, mask, src in (('query', 'query_mask', im_q),
                            ('hard_negative', 'hard_negative_mask', im_k)):
        m = out[mask]
        assert m.any()
        assert (m == m[:, :1]).all()  # spatial: the same cells per channel
        if strategy == 'blur':
            fill = gaussian_blur(src, 31, 10.0)
        else:
            fill = src.mean(dim=(2, 3), keepdim=True).expand_as(src)
        assert torch.equal(out[view][m], fill[m])
        assert torch.equal(out[view][~m], src[~m])
    for gen in (model.query_mask, model.hard_negative_mask):
        kinds = {gen(seed, image_size=(56, 56))['kind'] for seed in range(50)}
        assert kinds == {'spatial'}


def test_strategy_switch_and_explicit_parts():
    hp = tiny_saliency()
    assert type(hp.fill).__name__ == 'HighPassNoiseFill'
    assert type(hp.hard_negative_fill).__name__ == 'NoiseFill'
    assert hp.hard_negative_fill.std == 0.14
    assert (hp.query_mask.focal_prob, hp.query_mask.channel_prob,
            hp.query_mask.max_fg_ratio) == (0.2, 0.7, 0.55)
    assert (hp.hard_negative_mask.focal_size,
            hp.hard_negative_mask.channel_prob) == (130, 0.7)
    # a part of another type replaces only that part of the strategy
    mixed = tiny_saliency(strategy='blur', fill=dict(type='MeanFill'))
    assert type(mixed.fill).__name__ == 'MeanFill'
    assert type(mixed.hard_negative_fill).__name__ == 'BlurFill'
    # a part without a type (or of the same type) changes its arguments
    small = tiny_saliency(strategy='blur', query_mask=dict(base_size=64),
                          hard_negative_fill=dict(sigma=3.0))
    assert small.query_mask.base_size == 64
    assert small.query_mask.focal_prob == 0.0  # the rest: still 'blur'
    assert (small.hard_negative_fill.sigma,
            small.hard_negative_fill.kernel_size) == (3.0, 31)
    with pytest.raises(ValueError, match="strategy must be one of "
                       r"\('hp', 'blur', 'mean'\), got 'noise'"):
        tiny_saliency(strategy='noise')


# ------------------------------------------------------- random streams
def _masks_and_noise(model, im_q, im_k):
    model._random = StepRandom('saliency_masks')  # as after a restart
    out = model.prepare_views(im_q, im_k)
    return (out['query_mask'], out['hard_negative_mask'], out['query'],
            out['hard_negative'])


def test_masks_and_noise_per_rank_and_iteration(at_iter):
    """Rank r at iteration i draws its own masks and noise; the same rank
    and iteration draw the same ones again (a resumed run)."""
    model = tiny_saliency()
    im_q, im_k = views(n=4, size=56, seed=6)
    draws = {}
    for rank, it in ((0, 10), (1, 10), (0, 11), (0, 10)):
        at_iter(it, rank)
        draws.setdefault((rank, it), []).append(
            _masks_and_noise(model, im_q, im_k))
    same = draws[(0, 10)]
    for a, b in zip(*same):
        assert torch.equal(a, b)
    for other in ((1, 10), (0, 11)):
        a, b = same[0], draws[other][0]
        assert not torch.equal(a[0], b[0])  # query masks
        assert not torch.equal(a[2], b[2])  # noise (and masks) of the query


def _rank_worker(rank):
    torch.manual_seed(0)  # the shared run seed (and the same weights)
    model = tiny_saliency()
    im_q, im_k = views(n=4, size=56, seed=6)  # the same images
    first = _masks_and_noise(model, im_q, im_k)
    torch.manual_seed(0)  # a restart with the run's seed
    again = _masks_and_noise(tiny_saliency(), im_q, im_k)
    return dict(first=first, again=again)


def test_two_gloo_ranks_draw_different_masks(tmp_path):
    r0, r1 = on_two_gloo_ranks(_rank_worker, tmp_path)
    for r in (r0, r1):
        for a, b in zip(r['first'], r['again']):
            assert torch.equal(a, b)  # same rank, same step: same draws
    assert not torch.equal(r0['first'][0], r1['first'][0])
    assert not torch.equal(r0['first'][1], r1['first'][1])
    assert not torch.equal(r0['first'][2], r1['first'][2])
