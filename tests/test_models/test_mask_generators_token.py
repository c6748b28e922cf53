"""Token-space mask generators (mmmask/models/mask_generators/token.py):
exact counts, block structure, seeded reproducibility, clear errors, and the
GenerateMask pipeline transform."""
import math

import numpy as np
import pytest
import torch

import mmmask.models  # noqa: F401
from mmmask.registry import MASK_GENERATORS, TRANSFORMS


def build(**cfg):
    return MASK_GENERATORS.build(cfg)


@pytest.mark.parametrize('size,ratio', [(14, 0.75), ((8, 8), 0.5),
                                        ((6, 10), 0.3), (7, 0.0)])
def test_random_patch_mask_count(size, ratio):
    gen = build(type='RandomPatchMask', input_size=size, mask_ratio=ratio)
    h, w = (size, size) if isinstance(size, int) else size
    # independent count: floor of the decimal product
    expected = (h * w * round(ratio * 100)) // 100
    rng = np.random.default_rng(0)
    masks = [gen(rng)['mask'] for _ in range(20)]
    for m in masks:
        assert m.dtype == np.bool_ and m.shape == (h, w)
        assert m.sum() == expected
    if 0 < expected < h * w:  # masks differ between draws
        assert len({m.tobytes() for m in masks}) > 1


def test_random_patch_mask_is_uniform():
    gen = build(type='RandomPatchMask', input_size=4, mask_ratio=0.5)
    freq = gen.batch(4000, rng=1).float().mean(0)  # (4, 4)
    assert torch.allclose(freq, torch.full((4, 4), 0.5), atol=0.04)


def test_cmae_block_mask_structure_and_count():
    gen = build(type='BlockRandomMask', input_size=14, block_size=2,
                mask_ratio=0.65)
    rng = np.random.default_rng(3)
    for _ in range(20):
        out = gen(rng)
        mask, blocks = out['mask'], out['block_mask']
        assert blocks.shape == (7, 7)
        assert (~blocks).sum() == 17 == out['num_visible_blocks']
        assert (~mask).sum() == 68 and mask.sum() == 128
        # every 2 x 2 block is all masked or all visible, matching block_mask
        cells = mask.reshape(7, 2, 7, 2).transpose(0, 2, 1, 3).reshape(7, 7, 4)
        assert np.all(cells.all(-1) == cells.any(-1))
        assert np.array_equal(cells[..., 0], blocks)


@pytest.mark.parametrize('grid,k,ratio', [(8, 2, 0.75), (12, 3, 0.5),
                                          ((4, 8), 4, 0.6)])
def test_block_mask_rounding_rule(grid, k, ratio):
    """visible blocks = floor(B * (1 - ratio)), computed in integers."""
    h, w = (grid, grid) if isinstance(grid, int) else grid
    gen = build(type='BlockRandomMask', input_size=grid, block_size=k,
                mask_ratio=ratio)
    num_blocks = (h // k) * (w // k)
    visible = num_blocks * (100 - round(ratio * 100)) // 100
    mask = gen(0)['mask']
    assert (~mask).sum() == visible * k * k


@pytest.mark.parametrize('num,min_p', [(75, 4), (30, 4), (100, 16), (3, 4)])
def test_beit_blockwise_exact_count(num, min_p):
    gen = build(type='BlockwiseMask', input_size=14, num_masking_patches=num,
                min_num_patches=min_p)
    rng = np.random.default_rng(5)
    blocks = []
    for _ in range(30):
        out = gen(rng)
        assert out['mask'].shape == (14, 14)
        assert out['mask'].sum() == num
        blocks.append(out['num_blocks'])
    if num >= 30:  # built from rectangles, not token by token
        assert np.mean(blocks) < num / 2


def test_beit_blockwise_blocks_respect_sizes():
    """A single drawn block (count = one block's worth) is a rectangle whose
    area is within [min, max] and aspect within the bounds."""
    gen = build(type='BlockwiseMask', input_size=14, num_masking_patches=40,
                min_num_patches=12, max_num_patches=12, min_aspect=0.5)
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = np.zeros((14, 14), bool)
        new = gen._try_block(rng, mask, 12)
        assert new > 0
        rows, cols = np.nonzero(mask)
        bh, bw = np.ptp(rows) + 1, np.ptp(cols) + 1
        assert bh * bw == mask.sum()  # one full rectangle
        assert 12 * 0.5 - 3 <= bh * bw <= 12 + 4  # round() on each side
        assert 0.5 / 2 <= bh / bw <= 2 * 2


def test_beit_blockwise_ratio_argument():
    gen = build(type='BlockwiseMask', input_size=(10, 10), mask_ratio=0.4,
                num_masking_patches=None)
    assert gen(0)['mask'].sum() == 40


def test_simmim_mask():
    gen = build(type='SimMIMMask', input_size=192, mask_patch_size=32,
                model_patch_size=4, mask_ratio=0.6)
    out = gen(0)
    mask, cells = out['mask'], out['cell_mask']
    assert cells.shape == (6, 6) and mask.shape == (48, 48)
    assert cells.sum() == math.ceil(36 * 0.6) == 22
    assert np.array_equal(mask, np.kron(cells, np.ones((8, 8), bool)))


def test_seeded_and_batch():
    gen = build(type='BlockRandomMask', input_size=8, block_size=2,
                mask_ratio=0.5)
    a, b = gen.batch(5, rng=7), gen.batch(5, rng=7)
    assert a.dtype == torch.bool and a.shape == (5, 8, 8)
    assert torch.equal(a, b)
    assert not torch.equal(a, gen.batch(5, rng=8))


@pytest.mark.parametrize('cfg,needle', [
    (dict(type='RandomPatchMask', mask_ratio=1.0), 'mask_ratio must be in'),
    (dict(type='BlockRandomMask', mask_ratio=-0.1), 'mask_ratio must be in'),
    (dict(type='BlockRandomMask', input_size=14, block_size=3),
     'multiple of block_size'),
    (dict(type='SimMIMMask', input_size=100), 'multiple of mask_patch_size'),
    (dict(type='BlockwiseMask', num_masking_patches=196), 'in [0, 196)'),
])
def test_errors(cfg, needle):
    with pytest.raises(ValueError, match=None) as err:
        build(**cfg)
    assert needle in str(err.value)


def test_generate_mask_transform():
    np.random.seed(0)
    t = TRANSFORMS.build(dict(
        type='GenerateMask', info_key='mask_info',
        generator=dict(type='BlockRandomMask', input_size=14)))
    out = t(dict(img=np.zeros((4, 4, 3), np.uint8)))
    assert out['mask'].shape == (14, 14) and (~out['mask']).sum() == 68
    assert out['mask_info']['block_mask'].shape == (7, 7)
