"""Views that keep their geometry (GeometricMultiView, map_boxes, ...).

The test image encodes its own coordinates: red = column, green = row (a
200 x 150 image, so both fit a byte). A point or a box mapped from one view
into another must land on pixels that encode the same original
coordinates, through crops, rescales and flips; the packed data sample
carries the geometry.
"""
import numpy as np
import pytest

import mmmask.datasets  # noqa: F401
from mmmask.datasets.transforms import (ViewGeometry, box_iou, map_boxes,
                                        map_boxes_from_original,
                                        map_boxes_to_original, map_points,
                                        overlap_box)
from mmmask.registry import TRANSFORMS

H, W = 150, 200


def coordinate_image():
    rows, cols = np.mgrid[0:H, 0:W]
    return np.stack([cols, rows, np.zeros_like(cols)], -1).astype(np.uint8)


def views(flip_prob, seed, size=64, scale=(0.2, 1.0)):
    t = TRANSFORMS.build(dict(
        type='GeometricMultiView', num_views=2, transforms=[[
            dict(type='RandomResizedCrop', scale=size,
                 crop_ratio_range=scale, interpolation='bilinear'),
            dict(type='RandomFlip', prob=flip_prob)]]))
    np.random.seed(seed)
    return t(dict(img=coordinate_image()))


def encoded(img, x, y):
    """The original (x, y) that view pixel (x, y) (continuous) encodes:
    pixel values are the original pixel index, i.e. centre - 0.5."""
    j = int(np.clip(np.floor(x), 0, img.shape[1] - 1))
    i = int(np.clip(np.floor(y), 0, img.shape[0] - 1))
    return img[i, j, 0] + 0.5, img[i, j, 1] + 0.5


@pytest.mark.parametrize('flip_prob', [0.0, 1.0, 0.5])
def test_points_map_to_the_same_original_pixels(flip_prob):
    checked = 0
    for seed in range(12):
        res = views(flip_prob, seed)
        (a, b), (ga, gb) = res['img'], res['view_geometry']
        if flip_prob == 1.0:
            assert ga.flip and gb.flip
        if flip_prob == 0.0:
            assert not ga.flip and not gb.flip
        box = overlap_box(ga, gb)
        if box is None:
            continue
        # a 6 x 6 lattice of points of view a
        for y in np.linspace(1, 63, 6):
            for x in np.linspace(1, 63, 6):
                ox, oy = encoded(a, x, y)
                # a's pixel really is where the geometry says in the original
                tx, ty, _ = np.linalg.inv(ga.matrix) @ [x, y, 1.0]
                sa = 1 / min(ga.scale)  # original pixels per view pixel
                assert abs(ox - tx) <= sa + 1 and abs(oy - ty) <= sa + 1
                # and the mapped point in b encodes the same original pixel
                if not (box[0] + 2 <= tx <= box[2] - 2 and
                        box[1] + 2 <= ty <= box[3] - 2):
                    continue
                bx, by = map_points([x, y], ga, gb)
                assert 0 <= bx <= 64 and 0 <= by <= 64
                px, py = encoded(b, bx, by)
                tol = 1 / min(gb.scale) + sa + 1
                assert abs(px - ox) <= tol and abs(py - oy) <= tol, (
                    seed, (x, y), (bx, by), (ox, oy), (px, py))
                checked += 1
    assert checked > 50


@pytest.mark.parametrize('flip_prob', [0.0, 1.0])
def test_a_box_covers_the_same_original_pixels_in_both_views(flip_prob):
    done = 0
    for seed in range(20):
        res = views(flip_prob, seed)
        (a, b), (ga, gb) = res['img'], res['view_geometry']
        box = overlap_box(ga, gb)
        if box is None or min(box[2] - box[0], box[3] - box[1]) < 30:
            continue
        # a box inside the overlap, in view a's pixels, then in view b's
        orig = np.array([box[0] + 5, box[1] + 5, box[2] - 5, box[3] - 5])
        in_a = map_boxes_from_original(orig, ga)
        in_b = map_boxes(in_a, ga, gb)
        assert in_b[0] <= in_b[2] and in_b[1] <= in_b[3]  # flips re-sorted
        assert np.allclose(map_boxes_to_original(in_b, gb), orig)

        def covered(img, bx):
            x0, y0, x1, y1 = (int(round(v)) for v in bx)
            patch = img[y0:y1, x0:x1]
            return (patch[..., 0].min(), patch[..., 0].max(),
                    patch[..., 1].min(), patch[..., 1].max())

        ca, cb = covered(a, in_a), covered(b, in_b)
        tol = 1 / min(ga.scale) + 1 / min(gb.scale) + 1
        assert np.allclose(ca, cb, atol=tol), (seed, ca, cb)
        assert np.allclose(ca, orig[[0, 2, 1, 3]], atol=tol + 1)
        done += 1
    assert done >= 5


def test_geometry_records_crop_flip_and_scale():
    res = views(1.0, 0, scale=(0.3, 0.3))
    g = res['view_geometry'][0]
    x0, y0, x1, y1 = g.crop_box
    assert 0 <= x0 < x1 <= W and 0 <= y0 < y1 <= H
    assert g.flip and not g.vflip
    sx, sy = g.scale
    assert np.isclose(sx, 64 / (x1 - x0)) and np.isclose(sy, 64 / (y1 - y0))
    assert np.isclose((x1 - x0) * (y1 - y0) / (W * H), 0.3, atol=0.02)
    assert g.ori_shape == (H, W) and g.view_shape == (64, 64)
    # the crop box of a flipped view: view's left edge is the crop's right
    assert np.allclose(np.linalg.inv(g.matrix) @ [0, 0, 1], [x1, y0, 1])


def test_geometry_goes_through_pack_inputs():
    res = views(0.5, 3)
    pack = TRANSFORMS.build(dict(type='PackInputs',
                                 algorithm_keys=['view_geometry']))
    out = pack(res)
    assert len(out['inputs']) == 2
    geoms = out['data_samples'].view_geometry
    assert all(isinstance(g, ViewGeometry) for g in geoms)
    assert np.array_equal(geoms[0].matrix, res['view_geometry'][0].matrix)


def test_untracked_resize_is_an_error():
    t = TRANSFORMS.build(dict(
        type='GeometricMultiView', num_views=1,
        transforms=[[dict(type='Resize', scale=(32, 32))]]))
    with pytest.raises(RuntimeError, match='without recording its geometry'):
        t(dict(img=coordinate_image()))


def test_min_overlap_redraws():
    t = TRANSFORMS.build(dict(
        type='GeometricMultiView', num_views=2, min_overlap=0.5,
        max_attempts=50, transforms=[[
            dict(type='RandomResizedCrop', scale=32,
                 crop_ratio_range=(0.05, 0.1))]]))
    np.random.seed(0)
    fractions = []
    for _ in range(10):
        geoms = t(dict(img=coordinate_image()))['view_geometry']
        fractions.append(t._overlap_fraction(geoms))
    assert min(fractions) >= 0.5


def test_sample_overlap_region_in_both_views():
    region = TRANSFORMS.build(dict(type='SampleOverlapRegion',
                                   num_neg_regions=3, neg_max_iou=0.3))
    for seed in range(5):
        res = region(views(0.5, seed, scale=(0.5, 1.0)))
        ga, gb = res['view_geometry']
        assert res['region_valid']
        ra, rb = res['regions']
        assert np.allclose(map_boxes(ra, ga, gb), rb, atol=1e-4)
        box = overlap_box(ga, gb)
        orig = map_boxes_to_original(ra, ga)
        assert (orig[:2] >= box[:2] - 1e-6).all()
        assert (orig[2:] <= box[2:] + 1e-6).all()
        ys, xs = np.mgrid[0:64, 0:64] + 0.5
        inside = (xs >= ra[0]) & (xs < ra[2]) & (ys >= ra[1]) & (ys < ra[3])
        assert np.array_equal(res['mask'], inside)
        assert res['neg_regions'].shape == (3, 4)
        assert all(box_iou(n, rb) < 0.3 for n in res['neg_regions'])


def test_view_geometry_dataclass_identity():
    g = ViewGeometry(matrix=np.eye(3), ori_shape=(10, 20), view_shape=(10, 20))
    assert np.allclose(g.crop_box, [0, 0, 20, 10])
    assert not g.flip and g.scale == (1.0, 1.0)


def test_affine_inverse_equals_the_matrix_inverse():
    from mmmask.datasets.transforms.geometry import affine_inverse
    rng = np.random.default_rng(0)
    for _ in range(50):
        m = np.eye(3)
        m[:2] = rng.normal(size=(2, 3))
        np.testing.assert_allclose(affine_inverse(m), np.linalg.inv(m),
                                   rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match='not invertible'):
        affine_inverse(np.diag([0., 1., 1.]))
