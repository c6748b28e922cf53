"""Pixel-space mask generators and fills (MASK_GENERATORS).

* saliency grid masks: the exact cell counts for each drawn ratio, the
  foreground/background split on hand-made saliency maps (cells at their
  true positions), focal masks, channel-wise vs spatial, determinism;
* the hard-negative (foreground-only) generator;
* region boxes inside their bounds with the configured side range;
* fills against independent computations (torchvision's blur);
* out-of-range ratios are one clear error.
"""
import numpy as np
import pytest
import torch

from mmmask.models.mask_generators import (as_generator, cells_to_pixels,
                                           saliency_foreground)
from mmmask.registry import MASK_GENERATORS


def build(type_, **kw):
    return MASK_GENERATORS.build(dict(type=type_, **kw))


def graded_saliency():
    """A 7 x 7 map: a bright blob in the left columns, dim elsewhere.
    Foreground by the spec's rule mean - 0.6 std, computed here by hand."""
    sal = np.full((7, 7), 1.0)
    sal[:, :3] = 10.0   # 21 bright cells in columns 0-2
    sal[3, 3] = 6.0     # one medium cell
    thr = sal.mean() - 0.6 * sal.std()
    return sal, sal >= thr


def cells_of(mask, g=7):
    """Pixel mask (C, H, W) -> the (C, g, g) cells it covers entirely, and a
    check that it is made of whole cells."""
    c, h, w = mask.shape
    cells = mask.reshape(c, g, h // g, g, w // g)
    full = cells.all(axis=(2, 4))
    assert np.array_equal(cells.any(axis=(2, 4)), full), 'partial cells'
    return full


def test_foreground_rule_and_true_positions():
    sal, fg = graded_saliency()
    assert np.array_equal(saliency_foreground(sal, 7, 0.6), fg)
    assert fg[:, :3].all() and fg.sum() in (21, 22)  # left block (+ medium)
    gen = build('SaliencyGridMaskGenerator', focal_prob=0.0, channel_prob=0.0,
                ratio_range=(0.2, 0.24))
    rng = as_generator(0)
    for _ in range(50):
        out = gen(rng, saliency=sal, image_size=(224, 224))
        cells = cells_of(out['mask'])
        assert np.array_equal(cells, out['cells'])
        assert (cells == cells[0]).all()  # spatial: one set for all channels
        masked_fg = int((cells[0] & fg).sum())
        masked_bg = int((cells[0] & ~fg).sum())
        assert (masked_fg, masked_bg) == (out['num_fg'], out['num_bg'])
        # the spec's counts, computed independently
        r = out['ratio']
        n = int(49 * r)
        n_fg = round(min(r * fg.sum() / 49, 0.55) * 49)
        assert masked_fg + masked_bg == n
        assert masked_fg == n_fg
        # foreground cells stay where the saliency is (columns 0-2 and the
        # medium cell), never shifted right as in the authors' code
        assert not (cells[0] & ~fg).any() or masked_bg > 0
        assert set(zip(*np.nonzero(cells[0] & fg))) <= set(zip(*np.nonzero(fg)))


def test_channel_wise_masks_differ_per_channel_with_equal_counts():
    sal, fg = graded_saliency()
    gen = build('SaliencyGridMaskGenerator', focal_prob=0.0, channel_prob=1.0,
                ratio_range=(0.2, 0.24))
    rng = as_generator(1)
    differ = 0
    for _ in range(20):
        out = gen(rng, saliency=sal)
        assert out['kind'] == 'channel'
        cells = cells_of(out['mask'])
        n = int(49 * out['ratio'])
        assert [int(c.sum()) for c in cells] == [n] * 3
        assert [int((c & fg).sum()) for c in cells] == [out['num_fg']] * 3
        differ += int(not (cells == cells[0]).all())
    assert differ >= 15  # independent draws per channel


def test_focal_mask_keeps_one_square():
    gen = build('SaliencyGridMaskGenerator', focal_prob=1.0)
    out = gen(3, image_size=(224, 224))
    assert out['kind'] == 'focal'
    kept = ~out['mask'][0]
    rows, cols = np.nonzero(kept)
    assert kept.sum() == 200 * 200
    assert rows.max() - rows.min() + 1 == 200
    assert cols.max() - cols.min() + 1 == 200
    assert (out['mask'] == out['mask'][0]).all()
    # scaled with the view: 200/224 of a 64 px view
    small = gen(3, image_size=(64, 64))
    assert (~small['mask'][0]).sum() == round(200 * 64 / 224) ** 2


def test_kind_frequencies_follow_the_probabilities():
    gen = build('SaliencyGridMaskGenerator')  # focal 0.2, channel 0.7 of rest
    rng = as_generator(5)
    kinds = [gen(rng, image_size=(56, 56))['kind'] for _ in range(1000)]
    focal = kinds.count('focal') / 1000
    channel = kinds.count('channel') / max(1, 1000 - kinds.count('focal'))
    assert abs(focal - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 1000)
    assert abs(channel - 0.7) < 4 * np.sqrt(0.7 * 0.3 / 800)


def test_determinism_under_a_seed():
    sal, _ = graded_saliency()
    gen = build('SaliencyGridMaskGenerator')
    a = [gen(as_generator(7), saliency=sal)['mask'] for _ in range(2)]
    assert np.array_equal(a[0], a[1])
    # seeded through numpy's global state (what the pipeline seeds)
    np.random.seed(11)
    b = gen(saliency=sal)['mask']
    np.random.seed(11)
    assert np.array_equal(b, gen(saliency=sal)['mask'])
    masks = {gen(s, saliency=sal)['mask'].tobytes() for s in range(10)}
    assert len(masks) > 5


def test_hard_negative_masks_foreground_only():
    sal, fg = graded_saliency()
    gen = build('ForegroundMaskGenerator', focal_prob=0.0)
    rng = as_generator(2)
    kinds = set()
    for _ in range(30):
        out = gen(rng, saliency=sal)
        cells = cells_of(out['mask'])
        kinds.add(out['kind'])
        assert not (cells & ~fg).any()  # no background cell, any channel
        # r * fg_ratio stays below the 0.55 cap here: round(r * n_fg)
        assert [int(c.sum()) for c in cells] == \
            [round(out['ratio'] * fg.sum())] * 3
        assert 0.4 <= out['ratio'] <= 0.7
    assert kinds == {'channel', 'spatial'}


def test_hard_negative_kinds_as_the_query():
    """The authors' Masking(mode='neg'): focal p 0.2, else channel-wise 0.7
    / spatial 0.3, channel-wise cells drawn per channel."""
    gen = build('ForegroundMaskGenerator')
    rng = as_generator(5)
    outs = [gen(rng, image_size=(56, 56)) for _ in range(1000)]
    kinds = [o['kind'] for o in outs]
    focal = kinds.count('focal') / 1000
    channel = kinds.count('channel') / max(1, 1000 - kinds.count('focal'))
    assert abs(focal - 0.2) < 4 * np.sqrt(0.2 * 0.8 / 1000)
    assert abs(channel - 0.7) < 4 * np.sqrt(0.7 * 0.3 / 800)
    differ = [not (o['cells'] == o['cells'][0]).all() for o in outs
              if o['kind'] == 'channel']
    assert sum(differ) > 0.9 * len(differ)
    assert all((o['cells'] == o['cells'][0]).all() for o in outs
               if o['kind'] == 'spatial')


def test_hard_negative_foreground_count_is_capped():
    """round(min(r * fg_ratio, 0.55) * 49): with every cell foreground and
    r > 0.55 the count stops at round(0.55 * 49) = 27."""
    gen = build('ForegroundMaskGenerator', focal_prob=0.0)
    rng = as_generator(3)
    seen = 0
    for _ in range(200):
        out = gen(rng)  # no saliency: every cell is foreground
        n = int(out['cells'][0].sum())
        assert n == round(min(out['ratio'], 0.55) * 49)
        seen += out['ratio'] > 0.56
    assert seen > 20
    uncapped = build('ForegroundMaskGenerator', focal_prob=0.0,
                     max_fg_ratio=1.0)(as_generator(0))
    assert uncapped['cells'][0].sum() == round(uncapped['ratio'] * 49)


def test_hard_negative_focal_square_is_placed_uniformly():
    """The 130 x 130 square is a uniformly placed crop, wherever the
    foreground is (here: the left columns)."""
    sal, _ = graded_saliency()
    gen = build('ForegroundMaskGenerator', focal_prob=1.0)
    rng = as_generator(4)
    lefts, tops = [], []
    for _ in range(400):
        sq = gen(rng, saliency=sal, image_size=(224, 224))['mask']
        assert (sq == sq[0]).all()
        rows, cols = np.nonzero(sq[0])
        assert sq[0].sum() == 130 * 130
        assert rows.max() - rows.min() + 1 == 130
        lefts.append(cols.min())
        tops.append(rows.min())
    for pos in (np.array(lefts), np.array(tops)):
        # uniform on [0, 94]: mean 47, sd 27.4; both ends reached
        assert abs(pos.mean() - 47) < 4 * 27.4 / np.sqrt(400)
        assert pos.min() < 8 and pos.max() > 86


def test_cells_to_pixels_uneven_sizes():
    cells = np.zeros((7, 7), dtype=bool)
    cells[0, 0] = cells[6, 6] = True
    px = cells_to_pixels(cells, (50, 60))
    assert px.shape == (50, 60)
    assert px[0, 0] and px[-1, -1] and not px[25, 30]
    # edges round(linspace): rows 0,7,..,43,50; cols 0,9,..,51,60
    assert px.sum() == 7 * 9 + 7 * 9
    assert px[:7, :9].all() and not px[7, 0] and not px[0, 9]


def test_region_generator_boxes_inside_bounds():
    gen = build('RegionMaskGenerator', side_range=(0.3, 0.6))
    rng = as_generator(0)
    bounds = (10.0, 20.0, 50.0, 44.0)
    for _ in range(100):
        out = gen(rng, bounds=bounds, image_size=(64, 64))
        x0, y0, x1, y1 = out['box']
        assert bounds[0] <= x0 < x1 <= bounds[2]
        assert bounds[1] <= y0 < y1 <= bounds[3]
        assert 0.3 - 1e-9 <= (x1 - x0) / 40 <= 0.6 + 1e-9
        assert 0.3 - 1e-9 <= (y1 - y0) / 24 <= 0.6 + 1e-9
        ys, xs = np.mgrid[0:64, 0:64] + 0.5
        inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
        assert np.array_equal(out['mask'], inside)


@pytest.mark.parametrize('kwargs, message', [
    (dict(type='SaliencyGridMaskGenerator', ratio_range=(0.1, 1.2)),
     'ratio_range[1] must be in [0, 1), got 1.2'),
    (dict(type='SaliencyGridMaskGenerator', ratio_range=(-0.1, 0.2)),
     'ratio_range[0] must be in [0, 1), got -0.1'),
    (dict(type='ForegroundMaskGenerator', ratio_range=(0.7, 0.4)),
     'ratio_range must be (min, max) with min <= max'),
    (dict(type='SaliencyGridMaskGenerator', focal_prob=1.5),
     'focal_prob must be in [0, 1], got 1.5'),
    (dict(type='RegionMaskGenerator', side_range=(0.0, 0.5)),
     'side_range must be > 0'),
])
def test_bad_ratios_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError) as err:
        MASK_GENERATORS.build(kwargs)
    assert message in str(err.value)


# --------------------------------------------------------------------------
# fills
# --------------------------------------------------------------------------
def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 40, 48, generator=g)
    mask = torch.zeros(2, 3, 40, 48, dtype=torch.bool)
    mask[0, :, 5:15, 10:30] = True
    mask[1, 1, 20:, :] = True  # channel-wise
    return x, mask


def test_mean_fills():
    x, mask = _batch()
    out = build('MeanFill', mode='image')(x, mask)
    mean = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
    assert torch.equal(out[mask], mean[mask])
    assert torch.equal(out[~mask], x[~mask])
    zero = build('MeanFill', mode='dataset')(x, mask[:, :1])
    assert (zero[:, :, 5:15, 10:30][0] == 0).all()
    assert torch.equal(zero[1], x[1])  # mask[:, :1] of image 1 is empty


def test_noise_fill_statistics_and_untouched_pixels():
    x, mask = _batch()
    torch.manual_seed(0)
    out = build('NoiseFill', std=0.18)(x, mask)
    assert torch.equal(out[~mask], x[~mask])
    vals = out[mask]
    assert abs(vals.mean()) < 0.02 and abs(vals.std() - 0.18) < 0.02


def test_blur_and_high_pass_match_torchvision():
    from torchvision.transforms.functional import gaussian_blur as tv_blur
    x, mask = _batch()
    out = build('BlurFill', kernel_size=31, sigma=10.0)(x, mask)
    ref = tv_blur(x, [31, 31], [10.0, 10.0])
    assert torch.allclose(out[mask], ref[mask], atol=1e-5)
    assert torch.equal(out[~mask], x[~mask])
    hp = build('HighPassNoiseFill', std=0.18, kernel_size=11, sigma=5.0)
    assert torch.allclose(hp.transform_view(x),
                          x - tv_blur(x, [11, 11], [5.0, 5.0]), atol=1e-5)


def test_high_pass_fill_pastes_noise_into_the_filtered_view():
    """The authors' order: high-pass the view, then paste the noise. The
    unmasked pixels are exactly the high-passed image (no mask boundary
    leaks into them) and the masked ones are N(0, 0.18^2) noise."""
    from torchvision.transforms.functional import gaussian_blur as tv_blur
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, 3, 96, 96, generator=g)
    mask = torch.zeros(4, 3, 96, 96, dtype=torch.bool)
    mask[:, :, 20:60, 30:70] = True
    mask[1, 0, 60:, :] = True
    hp = build('HighPassNoiseFill', std=0.18, kernel_size=11, sigma=5.0)
    out = hp(hp.transform_view(x), mask, torch.Generator().manual_seed(0))
    high = x - tv_blur(x, [11, 11], [5.0, 5.0])
    assert torch.allclose(out[~mask], high[~mask], atol=1e-6)
    assert torch.equal(out[~mask], hp.transform_view(x)[~mask])
    vals = out[mask]
    assert abs(float(vals.std()) - 0.18) < 0.005
    assert abs(float(vals.mean())) < 0.005
    # the same generator state draws the same field
    again = hp(hp.transform_view(x), mask, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_noise_fill_draws_from_the_given_generator():
    """Same generator state, same field; torch's global state untouched."""
    x, mask = _batch()
    fill = build('NoiseFill', std=0.14)
    state = torch.get_rng_state()
    a = fill(x, mask, torch.Generator().manual_seed(3))
    b = fill(x, mask, torch.Generator().manual_seed(3))
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, b)
    assert not torch.equal(a, fill(x, mask, torch.Generator().manual_seed(4)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cpu_stream_seeds_the_noise_on_the_device():
    """CUDA images: the CPU generator gives one seed to a CUDA generator;
    the field is drawn on the device, the same again from the same state."""
    from mmmask.models.mask_generators.fills import randn_like
    x = torch.zeros(2, 3, 64, 64, device='cuda')
    a = randn_like(x, torch.Generator().manual_seed(3))
    b = randn_like(x, torch.Generator().manual_seed(3))
    assert a.device.type == 'cuda' and torch.equal(a, b)
    assert abs(float(a.std()) - 1) < 0.05
    assert not torch.equal(a, randn_like(x, torch.Generator().manual_seed(4)))


def test_fill_rejects_a_wrong_mask_shape():
    x, mask = _batch()
    with pytest.raises(ValueError, match='mask must be'):
        build('MeanFill')(x, mask[:, :2])


def test_generate_mask_transform_in_a_pipeline():
    from mmmask.registry import TRANSFORMS
    t = TRANSFORMS.build(dict(
        type='GenerateMask', info_key='mask_info',
        generator=dict(type='SaliencyGridMaskGenerator', focal_prob=0.0)))
    np.random.seed(0)
    res = t(dict(img=np.zeros((56, 70, 3), dtype=np.uint8)))
    assert res['mask'].shape == (3, 56, 70)
    n = int(49 * res['mask_info']['ratio'])
    assert res['mask_info']['cells'][0].sum() == n
    np.random.seed(0)
    again = t(dict(img=np.zeros((56, 70, 3), dtype=np.uint8)))
    assert np.array_equal(again['mask'], res['mask'])
    pack = TRANSFORMS.build(dict(type='PackInputs'))
    assert pack(res)['data_samples'].mask.shape == (3, 56, 70)
