"""The device-side batched view augmentation (split pipeline) equals the
per-image mmcv / mmpretrain / PIL transforms.

* each op, given the same parameters, against the per-image function on
  crops of real photographs (scikit-image's astronaut, chelsea, coffee):
  the batched ops emulate the per-image rounding step by step, so the
  bound is exact equality (hue and blur included; docs/pipeline.md);
* the parameter distributions (fixed seeds, many draws);
* the whole MoCo v2 chain against mmpretrain's per-image chain with the
  same parameters;
* ViewAugmentDataPreprocessor: no augmentation when ``training=False``,
  channel orders, flips update the geometry records, bad arguments;
* every method config uses the split pipeline by default, and the
  ``*_per_image.py`` switch gives the per-image one.
"""
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from PIL import Image

import mmmask.models  # noqa: F401
from mmmask.datasets.transforms.geometry import ViewGeometry, map_points
from mmmask.models.data_preprocessors import view_augment as F
from mmmask.registry import BATCH_AUGMENTS, MODELS
from helpers import ROOT

MEAN = [123.675, 116.28, 103.53]
STD = [58.395, 57.12, 57.375]


# --------------------------------------------------------------------------
# images: crops of real photographs, RGB uint8
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def photos():
    from skimage import data
    out = []
    for name in ('astronaut', 'chelsea', 'coffee'):
        img = np.asarray(getattr(data, name)())[..., :3]
        h, w = img.shape[:2]
        out.append(np.ascontiguousarray(img[h // 4:h // 4 + 72,
                                            w // 3:w // 3 + 88]))
        small = Image.fromarray(img).resize((88, 72), Image.BILINEAR)
        out.append(np.asarray(small))
    return out  # 6 x (72, 88, 3) RGB


def _batch(rgb_list):
    """RGB uint8 (H, W, 3) list -> (N, 3, H, W) float32 RGB."""
    return torch.from_numpy(np.stack(rgb_list)).permute(0, 3, 1, 2).float()


def _unbatch(t):
    """(N, 3, H, W) RGB -> list of (H, W, 3) uint8 RGB."""
    assert torch.equal(t, t.round()) and t.min() >= 0 and t.max() <= 255
    return list(t.permute(0, 2, 3, 1).to(torch.uint8).numpy())


def _max_diff(batched, per_image_rgb):
    return max(int(np.abs(a.astype(int) - b.astype(int)).max())
               for a, b in zip(batched, per_image_rgb))


def _f64(values):
    return torch.tensor(values, dtype=torch.float64)


# --------------------------------------------------------------------------
# each op against its per-image reference (same parameters)
# --------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['brightness', 'contrast', 'saturation'])
def test_enhance_ops_equal_mmcv_pillow(photos, name):
    """mmcv adjust_brightness / adjust_contrast / adjust_color with the
    pillow backend (BGR in, BGR out), as mmpretrain's ColorJitter calls
    them."""
    fn = dict(brightness=F.adjust_brightness, contrast=F.adjust_contrast,
              saturation=F.adjust_saturation)[name]
    for f in (0.6, 0.77, 0.999, 1.0, 1.23, 1.4, 0.0):
        batched = _unbatch(fn(_batch(photos), _f64([f] * len(photos))))
        ref = []
        for rgb in photos:
            bgr = np.ascontiguousarray(rgb[..., ::-1])
            if name == 'brightness':
                out = mmcv.adjust_brightness(bgr, f, backend='pillow')
            elif name == 'contrast':
                out = mmcv.adjust_contrast(bgr, f, backend='pillow')
            else:
                out = mmcv.adjust_color(bgr, alpha=f, backend='pillow')
            ref.append(out[..., ::-1])
        assert _max_diff(batched, ref) == 0, (name, f)


def test_hue_equals_mmcv_pillow_uint8_hsv(photos):
    """mmcv adjust_hue (pillow): PIL's uint8 HSV round trip with the hue
    plane shifted by trunc(255 h) mod 256, emulated step by step: exact
    (max and mean abs difference 0), including h = 0 (the round trip alone
    changes pixels) and negative shifts."""
    changed = 0
    for h in (-0.1, -0.05, -0.0031, 0.0, 0.002, 0.037, 0.1, 0.5, -0.5):
        batched = _unbatch(F.adjust_hue(_batch(photos),
                                        _f64([h] * len(photos))))
        ref = [mmcv.adjust_hue(np.ascontiguousarray(rgb[..., ::-1]), h,
                               backend='pillow')[..., ::-1] for rgb in photos]
        diffs = [np.abs(a.astype(int) - b.astype(int))
                 for a, b in zip(batched, ref)]
        assert max(int(d.max()) for d in diffs) == 0, h
        assert float(np.mean([d.mean() for d in diffs])) == 0.0
        changed += sum(int((r != p).any()) for r, p in zip(ref, photos))
    assert changed > 0  # the reference really changes the images


def _all_triples():
    """All 2**24 uint8 triples as a (4096, 4096, 3) array (channel 0 the
    high byte)."""
    c = np.arange(1 << 24, dtype=np.uint32)
    return np.stack([(c >> 16) & 255, (c >> 8) & 255, c & 255],
                    -1).astype(np.uint8).reshape(4096, 4096, 3)


def test_hue_tables_equal_pil_on_every_colour():
    """The table-driven adjust_hue against PIL on all 2**24 inputs: its RGB
    -> HSV steps against ``convert('HSV')`` of every colour, its HSV -> RGB
    steps against ``Image.frombytes('HSV').convert('RGB')`` of every
    (h, s, v); the shift is exercised on photographs above."""
    triples = _all_triples()
    x = torch.from_numpy(triples).permute(2, 0, 1)[None].float()
    # RGB -> HSV: h from the (r - g, g - b) table, s in float32, v = max
    h, s, v = F._rgb_to_hsv_tables(x)
    ref = np.asarray(Image.fromarray(triples).convert('HSV'))
    for got, c in ((h, 0), (s, 1), (v, 2)):
        assert np.array_equal(got[0].to(torch.uint8).numpy(), ref[..., c]), c
    # HSV -> RGB: hsv_u8 as (h, s, v) planes through the tables, shift 0
    hsv = torch.from_numpy(triples).permute(2, 0, 1).float()
    ref = np.asarray(Image.frombytes('HSV', (4096, 4096),
                                     triples.tobytes()).convert('RGB'))
    out = F._hsv_to_rgb_tables(hsv[0][None], hsv[1][None], hsv[2][None],
                               torch.zeros(1, dtype=torch.float64))
    assert np.array_equal(out[0].permute(1, 2, 0).to(torch.uint8).numpy(),
                          ref)


def test_fast_ops_equal_step_by_step_on_noise():
    """Uniform noise (every colour combination, edges of every op) through
    the table-driven hue and the float32 blur: the same as the step-by-step
    hue and PIL's blur, sample by sample."""
    from PIL import ImageFilter
    gen = torch.Generator().manual_seed(3)
    x = torch.randint(0, 256, (6, 3, 40, 52), generator=gen).float()
    x[:2, :, :10] = x[:2, :1, :10]  # grey rows (s = 0)
    hue = torch.rand(6, generator=gen, dtype=torch.float64) - 0.5
    assert torch.equal(F.adjust_hue(x, hue), F.adjust_hue_reference(x, hue))
    sigmas = torch.rand(6, generator=gen, dtype=torch.float64) * 1.9 + 0.1
    rgb = _unbatch(x)
    ref = [np.asarray(Image.fromarray(im).filter(
        ImageFilter.GaussianBlur(radius=float(s))))
        for im, s in zip(rgb, sigmas)]
    assert _max_diff(_unbatch(F.gaussian_blur(x, sigmas)), ref) == 0


def test_grayscale_equals_mmcv_random_grayscale(photos):
    """mmcv RandomGrayscale(keep_channels=True) on BGR with the MoCo v2
    weights (given in BGR order) = the batched op on RGB."""
    from mmcv.transforms import RandomGrayscale
    t = RandomGrayscale(prob=1.0, keep_channels=True,
                        channel_weights=(0.114, 0.587, 0.2989))
    op = BATCH_AUGMENTS.build(dict(type='BatchRandomGrayscale', prob=1.0,
                                   channel_weights=(0.114, 0.587, 0.2989)))
    batched = _unbatch(op.apply(_batch(photos),
                                dict(apply=torch.ones(len(photos),
                                                      dtype=torch.bool))))
    ref = [t(dict(img=np.ascontiguousarray(rgb[..., ::-1])))['img'][..., ::-1]
           for rgb in photos]
    assert _max_diff(batched, ref) == 0


@pytest.mark.parametrize('sigma', [0.1, 0.37, 0.8, 1.25, 1.6, 1.999, 2.0])
def test_blur_equals_pil_gaussian_blur(photos, sigma):
    """mmpretrain GaussianBlur(radius=sigma) = PIL ImageFilter.GaussianBlur:
    3 extended-box passes per axis in 2**24 fixed point, rounded to uint8
    after each; emulated exactly (max abs diff 0 per channel), also with a
    different sigma for every sample of the batch."""
    from mmpretrain.datasets.transforms import GaussianBlur
    ref = [GaussianBlur(radius=sigma, prob=1.0)(
        dict(img=np.ascontiguousarray(rgb[..., ::-1])))['img'][..., ::-1]
        for rgb in photos]
    batched = _unbatch(F.gaussian_blur(_batch(photos),
                                       _f64([sigma] * len(photos))))
    assert _max_diff(batched, ref) == 0
    if sigma > 0.3:  # (sigma 0.1 leaves these photographs as they are)
        assert _max_diff(ref, photos) > 0


def test_blur_in_cpu_groups_is_the_same(photos, monkeypatch):
    """On the CPU the blur runs on groups of samples (BLUR_CPU_PIXELS):
    groups of 1 or 2 samples give the same values as one group."""
    x = _batch(photos)
    sigmas = _f64([0.1, 0.6, 1.1, 1.5, 1.8, 2.0][:x.shape[0]])
    whole = F.gaussian_blur(x.clone(), sigmas)
    for group in (1, 2):
        monkeypatch.setattr(F, 'BLUR_CPU_PIXELS',
                            group * x.shape[-2] * x.shape[-1])
        assert torch.equal(F.gaussian_blur(x.clone(), sigmas), whole)


def test_blur_per_sample_sigma(photos):
    sigmas = [0.1, 0.6, 1.1, 1.5, 1.8, 2.0]
    from PIL import ImageFilter
    ref = [np.asarray(Image.fromarray(rgb).filter(
        ImageFilter.GaussianBlur(radius=s))) for rgb, s in zip(photos, sigmas)]
    batched = _unbatch(F.gaussian_blur(_batch(photos), _f64(sigmas)))
    assert _max_diff(batched, ref) == 0


def test_compiled_kernels_equal_pil(photos):
    """compile=True (torch.compile of the fused blur passes and hue) gives
    PIL's values too; skipped where torch.compile cannot build a CPU
    kernel."""
    import shutil
    from PIL import ImageFilter
    if not any(shutil.which(c) for c in ('cc', 'gcc', 'g++', 'clang')):
        pytest.skip('torch.compile on the CPU needs a C++ compiler')
    sigmas = [0.4, 1.3, 2.0, 0.9, 1.7, 1.1]
    ref = [np.asarray(Image.fromarray(rgb).filter(
        ImageFilter.GaussianBlur(radius=s))) for rgb, s in zip(photos, sigmas)]
    out = F.gaussian_blur(_batch(photos), _f64(sigmas), compile=True)
    assert _max_diff(_unbatch(out), ref) == 0
    # unselected samples (identity taps) come out unchanged
    select = torch.tensor([True, False, True, False, False, True])
    out = _unbatch(F.gaussian_blur(_batch(photos), _f64(sigmas),
                                   compile=True, select=select))
    assert _max_diff(out, [r if s else p for r, p, s in
                           zip(ref, photos, select)]) == 0
    hues = [-0.5, -0.1, 0.0, 0.03, 0.1, 0.5]
    ref = [mmcv.adjust_hue(np.ascontiguousarray(rgb[..., ::-1]), h,
                           backend='pillow')[..., ::-1]
           for rgb, h in zip(photos, hues)]
    out = F.adjust_hue(_batch(photos), _f64(hues), compile=True)
    assert _max_diff(_unbatch(out), ref) == 0


def test_solarize_and_flip_equal_mmcv(photos):
    x = _batch(photos)
    for thr in (0, 77, 128, 256):
        batched = _unbatch(F.solarize(x, torch.full((len(photos), ),
                                                    float(thr))))
        ref = [mmcv.solarize(rgb, thr=thr) for rgb in photos]
        assert _max_diff(batched, ref) == 0
    flipped = _unbatch(F.hflip(x))
    assert _max_diff(flipped, [mmcv.imflip(rgb) for rgb in photos]) == 0


def test_pil_luma_is_pillow_L(photos):
    luma = F.pil_luma(_batch(photos))[:, 0].to(torch.uint8).numpy()
    for got, rgb in zip(luma, photos):
        assert np.array_equal(got, np.asarray(Image.fromarray(rgb)
                                              .convert('L')))


# --------------------------------------------------------------------------
# parameter distributions
# --------------------------------------------------------------------------
def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_color_jitter_params_match_mmpretrain_ranges():
    from mmpretrain.datasets.transforms import ColorJitter
    ref = ColorJitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
    op = BATCH_AUGMENTS.build(dict(type='BatchColorJitter', brightness=0.4,
                                   contrast=0.4, saturation=0.4, hue=0.1,
                                   prob=0.8))
    for name in ('brightness', 'contrast', 'saturation', 'hue'):
        assert tuple(op.ranges[name]) == pytest.approx(
            tuple(getattr(ref, name)))
    n = 24000
    p = op.sample_params(n, _gen())
    assert abs(p['apply'].double().mean().item() - 0.8) < 0.01
    for name, (lo, hi) in op.ranges.items():
        v = p[name]
        assert v.shape == (n, ) and v.min() >= lo and v.max() < hi
        assert abs(v.mean().item() - (lo + hi) / 2) < 0.01 * (hi - lo)
        assert abs(v.std().item() - (hi - lo) / 12 ** 0.5) < 0.01 * (hi - lo)
    # the 24 orders of the 4 ops: each a permutation, all equally likely
    order = p['order']
    assert torch.equal(order.sort(dim=1).values,
                       torch.arange(4).expand(n, 4))
    codes = (order * torch.tensor([64, 16, 4, 1])).sum(1)
    counts = torch.bincount(codes, minlength=256)
    counts = counts[counts > 0]
    assert len(counts) == 24
    expected = n / 24
    chi2 = (((counts.double() - expected) ** 2) / expected).sum().item()
    assert chi2 < 50  # 23 dof: p < 0.001 above 49.7


def test_other_params_distributions():
    n = 20000
    gray = BATCH_AUGMENTS.build(dict(type='BatchRandomGrayscale', prob=0.2))
    blur = BATCH_AUGMENTS.build(dict(type='BatchGaussianBlur',
                                     sigma_range=(0.1, 2.0), prob=0.5))
    sol = BATCH_AUGMENTS.build(dict(type='BatchSolarize', threshold=128,
                                    prob=0.2))
    flip = BATCH_AUGMENTS.build(dict(type='BatchRandomFlip', prob=0.5))
    g = _gen(1)
    assert abs(gray.sample_params(n, g)['apply'].double().mean() - 0.2) < 0.01
    assert abs(sol.sample_params(n, g)['apply'].double().mean() - 0.2) < 0.01
    assert abs(flip.sample_params(n, g)['flip'].double().mean() - 0.5) < 0.01
    p = blur.sample_params(n, g)
    assert abs(p['apply'].double().mean() - 0.5) < 0.01
    s = p['sigma']
    assert s.min() >= 0.1 and s.max() < 2.0
    # uniform: deciles of U(0.1, 2.0)
    q = torch.quantile(s, torch.linspace(0.1, 0.9, 9, dtype=torch.float64))
    assert torch.allclose(q, 0.1 + 1.9 * torch.linspace(0.1, 0.9, 9,
                                                        dtype=torch.float64),
                          atol=0.03)
    # the same generator state gives the same parameters (resume)
    assert torch.equal(blur.sample_params(8, _gen(5))['sigma'],
                       blur.sample_params(8, _gen(5))['sigma'])


# --------------------------------------------------------------------------
# the whole chain against mmpretrain's per-image chain
# --------------------------------------------------------------------------
def _mocov2_views():
    return Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets',
                                    'mocov2_views.py'))


def test_chain_equals_mmpretrain_per_image_chain(photos):
    """The config's device ops (view_augments) and its per-image transforms
    (view_pipeline_per_image without the crop), with each sample's drawn
    parameters forced into the per-image transforms' random draws."""
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import TRANSFORMS as MMPRETRAIN_TRANSFORMS
    cfg = _mocov2_views()
    ops = [BATCH_AUGMENTS.build(c) for c in cfg.view_augments]
    n = len(photos) * 4
    imgs = photos * 4
    gen = _gen(7)
    params = [op.sample_params(n, gen) for op in ops]
    x = _batch(imgs)
    for op, p in zip(ops, params):
        x = op.apply(x, p)
    batched = _unbatch(x)
    jit, gray, blur, flip = params
    # every op on and off somewhere in the batch
    for key, p in (('apply', jit), ('apply', gray), ('apply', blur),
                   ('flip', flip)):
        assert 0 < int(p[key].sum()) < n

    ref = []
    for i, rgb in enumerate(imgs):
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            ts = [MMPRETRAIN_TRANSFORMS.build(t)
                  for t in cfg.view_pipeline_per_image[1:]]
        rand_apply, gray_t, blur_t, flip_t = ts
        rand_apply.random_apply = lambda i=i: bool(jit['apply'][i])
        cj = rand_apply.transforms.transforms[0]
        cj._rand_params = lambda i=i: (
            jit['order'][i].numpy(), float(jit['brightness'][i]),
            float(jit['contrast'][i]), float(jit['saturation'][i]),
            float(jit['hue'][i]))
        gray_t._random_prob = lambda i=i: 0.0 if gray['apply'][i] else 1.0
        blur_t.random_disable = lambda i=i: not bool(blur['apply'][i])
        blur_t.random_magnitude = lambda i=i: float(blur['sigma'][i])
        flip_t._choose_direction = lambda i=i: (
            'horizontal' if flip['flip'][i] else None)
        results = dict(img=np.ascontiguousarray(rgb[..., ::-1]))
        for t in ts:
            results = t(results)
        ref.append(results['img'][..., ::-1])
    assert _max_diff(batched, ref) == 0
    assert _max_diff(ref, imgs) > 0


# --------------------------------------------------------------------------
# ViewAugmentDataPreprocessor
# --------------------------------------------------------------------------
def _preprocessor(**kw):
    cfg = dict(type='ViewAugmentDataPreprocessor', mean=MEAN, std=STD,
               to_rgb=True, view_augments=_mocov2_views().view_augments)
    cfg.update(kw)
    return MODELS.build(cfg)


def _views(photos, order='bgr'):
    x = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).contiguous()
    if order == 'bgr':
        x = x[:, [2, 1, 0]].contiguous()
    return [x, x.flip(0).contiguous()]  # two uint8 views


def test_eval_mode_is_plain_normalisation(photos):
    from mmpretrain.models.utils import SelfSupDataPreprocessor
    views = _views(photos)
    ref = SelfSupDataPreprocessor(mean=MEAN, std=STD, to_rgb=True)(
        dict(inputs=views, data_samples=None), training=False)['inputs']
    pre = _preprocessor()
    for training in (False, True):
        out = pre(dict(inputs=[v.clone() for v in views], data_samples=None),
                  training=training)['inputs']
        same = all(torch.equal(a, b) for a, b in zip(out, ref))
        assert same == (not training)
    assert torch.allclose(  # training with no ops: the same as eval
        _preprocessor(view_augments=[])(dict(inputs=views),
                                        training=True)['inputs'][0], ref[0])


def test_channel_orders(photos):
    """BGR views with to_rgb=True and RGB views with input_order='rgb',
    to_rgb=False give the same RGB output (the ops see RGB either way),
    and to_rgb=False on BGR views keeps BGR."""
    bgr = _preprocessor(input_order='bgr', to_rgb=True)(
        dict(inputs=_views(photos, 'bgr')), training=True)['inputs']
    rgb = _preprocessor(input_order='rgb', to_rgb=False)(
        dict(inputs=_views(photos, 'rgb')), training=True)['inputs']
    for a, b in zip(bgr, rgb):
        assert torch.equal(a, b)
    keep = _preprocessor(input_order='bgr', to_rgb=False, mean=None,
                         std=None)(dict(inputs=_views(photos, 'bgr')),
                                   training=True)['inputs']
    rgb_raw = _preprocessor(input_order='rgb', to_rgb=False, mean=None,
                            std=None)(dict(inputs=_views(photos, 'rgb')),
                                      training=True)['inputs']
    for a, b in zip(keep, rgb_raw):
        assert torch.equal(a, b[:, [2, 1, 0]])


def test_per_view_lists_and_step_random(photos):
    """A list per view (CMAE: the online view untouched); the draws come
    from StepRandom('view_augment'): same call index, same output."""
    views = _views(photos)
    pre = _preprocessor(view_augments=[[], _mocov2_views().view_augments])
    out = pre(dict(inputs=[v.clone() for v in views]), training=True)
    plain = _preprocessor(view_augments=[])(dict(inputs=views),
                                            training=True)['inputs']
    assert torch.equal(out['inputs'][0], plain[0])
    assert not torch.equal(out['inputs'][1], plain[1])
    again = _preprocessor(view_augments=[[], _mocov2_views().view_augments])
    assert torch.equal(again(dict(inputs=views), training=True)['inputs'][1],
                       out['inputs'][1])
    with pytest.raises(ValueError, match='per-view augmentation lists for 2'):
        _preprocessor(view_augments=[[]])(dict(inputs=views), training=True)


def test_flip_updates_geometry():
    """A flipped view's ViewGeometry maps each original point to the
    mirrored pixel of the view: view pixel (y, x) of the flipped view holds
    what pixel (y, W - 1 - x) held, and the new matrix maps the original
    point of that pixel's centre to it. MaskCo's regions and mask
    (query view 0) and neg_regions (key view 1) are mirrored with it."""
    from mmpretrain.structures import DataSample
    h, w = 6, 10
    img = torch.arange(2 * 3 * h * w, dtype=torch.uint8).view(2, 3, h, w)
    crop = np.array([[2., 0., -6.], [0., 2., -4.], [0., 0., 1.]])
    samples = []
    for _ in range(2):
        s = DataSample()
        s.set_field([ViewGeometry(crop.copy(), (40, 40), (h, w)),
                     ViewGeometry(np.eye(3), (40, 40), (h, w))],
                    'view_geometry')
        s.set_field(np.array([[1., 1., 4., 3.], [2., 0., 5., 2.]],
                             dtype=np.float32), 'regions')
        mask = torch.zeros(h, w, dtype=torch.bool)
        mask[1:3, 1:4] = True
        s.set_mask(mask)
        s.set_field(np.array([[0., 0., 2., 2.]], dtype=np.float32),
                    'neg_regions')
        samples.append(s)
    pre = _preprocessor(mean=None, std=None, to_rgb=False, input_order='rgb',
                        view_augments=[[dict(type='BatchRandomFlip',
                                             prob=1.0)], []])
    out = pre(dict(inputs=[img, img.clone()], data_samples=samples),
              training=True)
    q = out['inputs'][0]
    assert torch.equal(q, img.float().flip(-1))
    for s in out['data_samples']:
        g = s.view_geometry[0]
        assert g.flip and not s.view_geometry[1].flip
        # original point of view pixel centre (y, x) before the flip ...
        y, x = 2, 3
        before = ViewGeometry(crop, (40, 40), (h, w))
        orig = map_points(np.array([x + 0.5, y + 0.5]), before,
                          ViewGeometry(np.eye(3), (40, 40), (40, 40)))
        # ... lands on the mirrored pixel centre of the flipped view
        now = map_points(orig, ViewGeometry(np.eye(3), (40, 40), (40, 40)), g)
        assert np.allclose(now, [w - 1 - x + 0.5, y + 0.5])
        assert q[0, 0, y, w - 1 - x] == img[0, 0, y, x]
        # and back: the flipped view to the unflipped view 1 (identity)
        back = map_points(now, g, s.view_geometry[1])
        assert np.allclose(back, orig)
        np.testing.assert_allclose(s.regions, [[6., 1., 9., 3.],
                                               [2., 0., 5., 2.]])
        flipped_mask = torch.zeros(h, w, dtype=torch.bool)
        flipped_mask[1:3, 6:9] = True
        assert torch.equal(torch.as_tensor(s.mask), flipped_mask)
        np.testing.assert_allclose(s.neg_regions, [[0., 0., 2., 2.]])
    # the key view flipped: neg_regions mirrored, the mask not
    s = DataSample()
    s.set_field(np.array([[0., 0., 2., 2.]], dtype=np.float32), 'neg_regions')
    s.set_mask(torch.ones(h, w, dtype=torch.bool).tril())
    mask0 = s.mask.clone()
    pre = _preprocessor(mean=None, std=None, to_rgb=False, input_order='rgb',
                        view_augments=[[], [dict(type='BatchRandomFlip',
                                                 prob=1.0)]])
    s = pre(dict(inputs=[img[:1], img[:1]], data_samples=[s]),
            training=True)['data_samples'][0]
    np.testing.assert_allclose(s.neg_regions, [[8., 0., 10., 2.]])
    assert torch.equal(torch.as_tensor(s.mask), mask0)


def test_bad_arguments():
    with pytest.raises(ValueError, match="input_order must be 'bgr' or 'rgb'"):
        _preprocessor(input_order='hsv')
    with pytest.raises(ValueError, match='not a mix'):
        _preprocessor(view_augments=[[], dict(type='BatchRandomFlip')])
    with pytest.raises(TypeError, match='not a batched view augmentation'):
        _preprocessor(view_augments=[dict(type='Mixup', alpha=1.0)])
    with pytest.raises(ValueError, match='prob must be in'):
        BATCH_AUGMENTS.build(dict(type='BatchRandomFlip', prob=1.5))
    with pytest.raises(ValueError, match='sigma_range'):
        BATCH_AUGMENTS.build(dict(type='BatchGaussianBlur',
                                  sigma_range=(0., 1.)))
    with pytest.raises(ValueError, match='every view must be'):
        _preprocessor()(dict(inputs=[torch.zeros(2, 1, 4, 4)]),
                        training=True)


# --------------------------------------------------------------------------
# configs: split by default, the per-image switch
# --------------------------------------------------------------------------
METHOD_CONFIGS = [
    'mocov2_r50.py', 'densecl_r50.py', 'maskco_r50.py',
    'saliency_mocov2_r50.py', 'cmae_vit-base-p16.py',
    'macrl_vit-s-p4_cifar10.py', 'macrl_vit-s-p4_cifar100.py',
    'macrl_vit-s-p16_in100.py', 'demo/mocov2_r18_demo.py',
    'demo/densecl_r18_demo.py', 'demo/cmae_vit-tiny_demo.py',
    'demo/macrl_vit-tiny_demo.py'
]
CPU_COLOUR = ('ColorJitter', 'RandomGrayscale', 'GaussianBlur', 'RandomApply',
              'Solarize')


def _types(obj):
    if isinstance(obj, dict):
        out = [obj['type']] if 'type' in obj else []
        return out + [t for v in obj.values() for t in _types(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _types(v)]
    return []


@pytest.mark.parametrize('name', METHOD_CONFIGS)
def test_method_configs_use_the_split_pipeline(name):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    pre = cfg.model.data_preprocessor
    assert pre.type == 'ViewAugmentDataPreprocessor'
    pipeline_types = _types(cfg.train_dataloader.dataset.pipeline)
    assert not set(pipeline_types) & set(CPU_COLOUR), pipeline_types
    ops = _types(pre.view_augments)
    assert 'BatchColorJitter' in ops
    # the flip: on the device, except CMAE's (inside PixelShiftViews)
    if 'cmae' in name:
        assert 'RandomFlip' in pipeline_types and 'BatchRandomFlip' not in ops
    else:
        assert 'RandomFlip' not in pipeline_types and 'BatchRandomFlip' in ops
    MODELS.build(pre)


def test_per_image_switch(tmp_path):
    for base in ('imagenet_mocov2', 'demo_images'):
        cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets',
                                       f'{base}_per_image.py'))
        assert cfg.data_preprocessor.type == 'SelfSupDataPreprocessor'
        assert 'view_augments' not in cfg.data_preprocessor
        types = _types(cfg.train_dataloader.dataset.pipeline)
        assert {'ColorJitter', 'RandomGrayscale', 'GaussianBlur',
                'RandomFlip'} <= set(types)
    # a method config on the per-image base
    text = open(osp.join(ROOT, 'configs', 'mocov2_r50.py')).read()
    path = tmp_path / 'mocov2_per_image.py'
    path.write_text(text.replace(
        "'_base_/", f"'{ROOT}/configs/_base_/").replace(
        'imagenet_mocov2.py', 'imagenet_mocov2_per_image.py'))
    cfg = Config.fromfile(str(path))
    assert cfg.model.data_preprocessor.type == 'SelfSupDataPreprocessor'


def test_cpu_chunks_do_not_change_the_result(photos):
    views = _views(photos)
    outs = [_preprocessor(cpu_chunk=c)(dict(inputs=[v.clone() for v in views]),
                                       training=True)['inputs']
            for c in (1, 4, 64)]
    for other in outs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(outs[0], other))
