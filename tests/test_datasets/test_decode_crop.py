"""DecodeMultiViewCrops: the CPU side of the split pipeline.

Its crops are mmpretrain's RandomResizedCrop draws, its pixels are those of
the per-image pillow path (LoadImageFromFile + GeometricMultiView with
RandomResizedCrop(backend='pillow')) to within a grey level, its recorded
geometry is where its pixels came from (also after a reduced-scale JPEG
decode), and bad images give one error line naming the file (or are
skipped and counted) while odd colour formats come out as 3-channel uint8.
"""
import functools
import logging

import cv2
import numpy as np
import pytest
from PIL import Image

import mmmask.datasets  # noqa: F401
from mmmask.datasets.transforms import (CorruptImageError,
                                        DecodeMultiViewCrops,
                                        LoadImageFromFile, jpeg_header,
                                        map_points, overlap_fraction)
from mmmask.datasets.transforms.decode_crop import (choose_decode_scale,
                                                    resize_view, snap_crop)
from mmmask.registry import TRANSFORMS


@functools.lru_cache(maxsize=1)
def _china():
    from sklearn.datasets import load_sample_images
    return load_sample_images().images[0]  # 427 x 640 RGB


def photo(h=375, w=500):
    """A real photograph (scikit-learn's bundled 'china'), h x w RGB."""
    return np.asarray(Image.fromarray(_china()).resize((w, h), Image.BICUBIC))


def save_jpeg(path, rgb, **kw):
    Image.fromarray(rgb).save(path, quality=kw.pop('quality', 90), **kw)
    return str(path)


def build(**kw):
    kw.setdefault('crop', dict(scale=224, crop_ratio_range=(0.2, 1.)))
    return TRANSFORMS.build(dict(type='DecodeMultiViewCrops', **kw))


def pillow_views(path, seed, crop=dict(scale=224, crop_ratio_range=(0.2, 1.))):
    """The per-image path under ``seed``: (views, view_geometry)."""
    load = LoadImageFromFile()
    multi = TRANSFORMS.build(dict(
        type='GeometricMultiView', num_views=2, transforms=[[
            dict(type='RandomResizedCrop', backend='pillow', **crop)]]))
    np.random.seed(seed)
    res = multi(load(dict(img_path=path)))
    return res['img'], res['view_geometry']


# --------------------------------------------------------------------------
# header, draws, decode scale
# --------------------------------------------------------------------------
@pytest.mark.parametrize('kind', ['baseline', 'progressive', 'gray', 'exif'])
def test_jpeg_header_reads_the_size_without_decoding(tmp_path, kind):
    rgb = photo(123, 301)
    img = Image.fromarray(rgb)
    kw = {}
    if kind == 'progressive':
        kw['progressive'] = True
    elif kind == 'gray':
        img = img.convert('L')
    elif kind == 'exif':
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90 degrees on display
        kw['exif'] = exif.tobytes()
    path = tmp_path / 'a.jpg'
    img.save(path, quality=90, **kw)
    h, w, orientation = jpeg_header(path.read_bytes())
    assert (h, w) == (123, 301)
    assert orientation == (6 if kind == 'exif' else 1)
    png = tmp_path / 'a.png'
    img.save(png)
    assert jpeg_header(png.read_bytes()) is None
    assert jpeg_header(b'\xff\xd8\xff\xda garbage') is None


def test_crops_are_mmpretrain_random_resized_crop_draws(tmp_path):
    """Same seed, same crops as GeometricMultiView(RandomResizedCrop), and
    as mmpretrain's rand_crop_params called once per view."""
    from mmpretrain.datasets.transforms import RandomResizedCrop
    path = save_jpeg(tmp_path / 'a.jpg', photo())
    t = build(reduced_decode=False)
    ref = RandomResizedCrop(scale=224, crop_ratio_range=(0.2, 1.))
    for seed in range(20):
        np.random.seed(seed)
        out = t(dict(img_path=path))
        _, geoms = pillow_views(path, seed)
        np.testing.assert_allclose(out['crop_bbox'],
                                   [g.crop_box for g in geoms], atol=1e-9)
        np.random.seed(seed)
        img = np.empty((375, 500, 0), np.uint8)
        for box in out['crop_bbox']:
            top, left, h, w = ref.rand_crop_params(img)
            assert tuple(box) == (left, top, left + w, top + h)
        assert out['decode_scale'] == 1


def test_crop_distribution_includes_the_fallback():
    """An aspect range no crop of the image can meet: every draw falls
    back to mmpretrain's central crop."""
    t = build(crop=dict(scale=32, crop_ratio_range=(0.9, 1.),
                        aspect_ratio_range=(3., 4.)))
    np.random.seed(0)
    # aspect 2 < 3: full width, height round(200 / 3), centred
    assert t.draw_crops((100, 200)) == [(16, 0, 67, 200)] * 2


def test_config_errors_are_one_line():
    with pytest.raises(ValueError, match='one count per crop config'):
        build(num_views=[1, 1])
    with pytest.raises(ValueError, match='RandomResizedCrop arguments'):
        build(crop=dict(type='CenterCrop', crop_size=224))
    with pytest.raises(ValueError, match='interpolation must be one of'):
        build(crop=dict(scale=224, interpolation='lanczos'))
    # a config's RandomResizedCrop dict goes in as it is
    t = build(crop=dict(type='RandomResizedCrop', scale=96, backend='cv2',
                        crop_ratio_range=(0.2, 1.)))
    assert isinstance(t, DecodeMultiViewCrops)
    assert t.croppers[0].scale == (96, 96)


def test_min_overlap_redraws():
    t = build(crop=dict(scale=32, crop_ratio_range=(0.05, 0.1)),
              min_overlap=0.5, max_attempts=50)
    np.random.seed(0)
    for _ in range(10):
        crops = t.draw_crops((150, 200))
        boxes = [(x, y, x + w, y + h) for y, x, h, w in crops]
        assert overlap_fraction(boxes) >= 0.5


def test_decode_scale_only_when_every_crop_keeps_the_output_size():
    out = [(224, 224), (224, 224)]
    ori = (1200, 1600)
    big = (0, 0, 900, 900)  # 900 px: 4 x 224 = 896 fits, 8 x 224 does not
    assert choose_decode_scale([big, big], out, ori) == 4
    assert choose_decode_scale([big, (0, 0, 500, 900)], out, ori) == 2
    assert choose_decode_scale([big, (0, 0, 447, 900)], out, ori) == 1
    # the crop snapped to the reduced grid must keep the size too
    assert snap_crop((3, 3, 449, 449), 2, (600, 800)) == (2, 2, 226, 226)
    assert snap_crop((3, 5, 448, 450), 2, (600, 800)) == (2, 2, 226, 228)
    assert choose_decode_scale([(3, 3, 448, 448)] * 2, out, ori) == 2
    assert snap_crop((1, 1, 449, 449), 2, (600, 800)) == (0, 0, 225, 225)
    assert snap_crop((0, 0, 600, 800), 8, (75, 100)) == (0, 0, 75, 100)
    # scale 1 keeps the crop as drawn
    assert snap_crop((7, 9, 100, 50), 1, (375, 500)) == (7, 9, 107, 59)
    # the ImageNet-size case: a 375 px high image never reaches 2 x 224
    assert choose_decode_scale([(0, 0, 375, 500)] * 2, out, (375, 500)) == 1


def test_reduced_decode_views_have_the_output_size_and_the_same_content(
        tmp_path):
    path = save_jpeg(tmp_path / 'big.jpg', photo(1200, 1600), quality=95)
    crop = dict(scale=64, crop_ratio_range=(0.3, 1.))
    reduced, full = build(crop=crop), build(crop=crop, reduced_decode=False)
    scales = []
    for seed in range(6):
        np.random.seed(seed)
        a = reduced(dict(img_path=path))
        np.random.seed(seed)
        b = full(dict(img_path=path))
        scales.append(a['decode_scale'])
        assert b['decode_scale'] == 1
        for va, vb, box in zip(a['img'], b['img'], a['crop_bbox']):
            assert va.shape == vb.shape == (64, 64, 3) and va.dtype == np.uint8
            assert (box % a['decode_scale'] == 0).all()
            # the same region, both antialiased to 64 px: close pixels
            assert np.abs(va.astype(int) - vb).mean() < 4
    assert max(scales) == 8 and min(scales) >= 2


# --------------------------------------------------------------------------
# pixels and geometry
# --------------------------------------------------------------------------
def test_views_close_to_the_pillow_pipeline(tmp_path):
    """Same seed: same crops, and pixels within a grey level of
    LoadImageFromFile + RandomResizedCrop(backend='pillow')."""
    path = save_jpeg(tmp_path / 'a.jpg', photo())
    t = build()
    diffs = []
    for seed in range(10):
        np.random.seed(seed)
        out = t(dict(img_path=path))
        ref, _ = pillow_views(path, seed)
        for v, r in zip(out['img'], ref):
            assert v.shape == r.shape == (224, 224, 3)
            assert v.dtype == np.uint8
            diffs.append(np.abs(v.astype(int) - r).mean())
    # the pixels of the same crop resampled as PIL does (equal but for
    # rounding in torch's fixed-point filter)
    assert np.mean(diffs) < 0.1 and max(diffs) < 0.3, diffs


def test_resize_view_matches_pil():
    rgb = photo()
    # shrinking, shrinking one axis and enlarging the other, enlarging
    for crop in (rgb[10:310, 20:420], rgb[:, :200], rgb[:150, :150]):
        ref = np.asarray(Image.fromarray(crop).resize((224, 224),
                                                      Image.BILINEAR))
        out = resize_view(crop, (224, 224))
        assert out.shape == (224, 224, 3) and out.dtype == np.uint8
        assert np.abs(out.astype(int) - ref).mean() < 0.2
        # channel-first memory: PackInputs' (3, H, W) needs no copy
        assert out.transpose(2, 0, 1).flags.c_contiguous


def phase_image(h, w, period, axis):
    """cos / sin of the x (axis 1) or y (axis 0) coordinate of the pixel
    centre in R and G: any symmetric resampling keeps the phase, so a view
    pixel tells its original coordinate to a fraction of a pixel."""
    coord = (np.arange(h if axis == 0 else w) + 0.5) * 2 * np.pi / period
    c = np.cos(coord)[:, None] if axis == 0 else np.cos(coord)[None, :]
    s = np.sin(coord)[:, None] if axis == 0 else np.sin(coord)[None, :]
    c, s = np.broadcast_to(c, (h, w)), np.broadcast_to(s, (h, w))
    img = np.stack([128 + 110 * c, 128 + 110 * s, np.full((h, w), 128.)], -1)
    return img.round().astype(np.uint8)


@pytest.mark.parametrize('axis', [1, 0])
@pytest.mark.parametrize('size', [(375, 500, 224), (1200, 1600, 64)])
def test_geometry_matches_the_pixels(tmp_path, axis, size):
    """Each view pixel's centre, mapped back through its ViewGeometry, lands
    on the original coordinate its pixel value encodes (full and reduced
    decode), and a point seen in both views maps between them."""
    h, w, out = size
    period = 64.0
    path = save_jpeg(tmp_path / 'phase.jpg', phase_image(h, w, period, axis),
                     quality=98, subsampling=0)
    t = build(crop=dict(scale=out, crop_ratio_range=(0.3, 1.)))
    errors, scales = [], set()
    for seed in range(6):
        np.random.seed(seed)
        res = t(dict(img_path=path))
        scales.add(res['decode_scale'])
        for view, geom in zip(res['img'], res['view_geometry']):
            assert geom.view_shape == (out, out) and geom.ori_shape == (h, w)
            ys, xs = np.mgrid[2:out - 2, 2:out - 2] + 0.5  # off the border
            pts = np.stack([xs.ravel(), ys.ravel()], -1)
            back = (pts - geom.matrix[:2, 2]) / np.diag(geom.matrix)[:2]
            rgb = view[ys.astype(int), xs.astype(int)][..., ::-1].reshape(
                -1, 3).astype(float)
            phase = np.arctan2(rgb[:, 1] - 128, rgb[:, 0] - 128)
            want = back[:, 1 - axis] * 2 * np.pi / period  # x or y
            err = np.angle(np.exp(1j * (phase - want))) * period / (2 * np.pi)
            errors.append(np.abs(err))
        ga, gb = res['view_geometry']
        p = map_points([[10.5, 20.5]], ga, gb)
        q = map_points(p, gb, ga)
        np.testing.assert_allclose(q, [[10.5, 20.5]], atol=1e-9)
    errors = np.concatenate(errors)
    # original pixels; a decode scale left out of the geometry would be
    # off by several periods, a crop offset by whole pixels
    assert np.median(errors) < 0.3 and errors.max() < 1.5, (
        np.median(errors), errors.max())
    assert scales == ({1} if out == 224 else scales) and (
        out == 224 or max(scales) > 1)


def test_output_packs_and_collates(tmp_path):
    from mmengine.dataset import default_collate
    path = save_jpeg(tmp_path / 'a.jpg', photo())
    pack = TRANSFORMS.build(dict(type='PackInputs',
                                 algorithm_keys=['view_geometry']))
    samples = [pack(build()(dict(img_path=path))) for _ in range(3)]
    batch = default_collate(samples)
    assert len(batch['inputs']) == 2
    assert batch['inputs'][0].shape == (3, 3, 224, 224)
    assert batch['inputs'][0].dtype == np.uint8 or str(
        batch['inputs'][0].dtype) == 'torch.uint8'
    assert len(batch['data_samples'][0].view_geometry) == 2


def test_overlap_region_on_its_output(tmp_path):
    """MaskCo's SampleOverlapRegion runs on the transform's geometry."""
    path = save_jpeg(tmp_path / 'a.jpg', photo())
    t = build(crop=dict(scale=64, crop_ratio_range=(0.5, 1.)),
              min_overlap=0.05)
    region = TRANSFORMS.build(dict(type='SampleOverlapRegion'))
    np.random.seed(1)
    res = region(t(dict(img_path=path)))
    assert res['region_valid'] and res['regions'].shape == (2, 4)
    assert res['mask'].shape == (64, 64)


# --------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------
@pytest.mark.parametrize('damage', ['garbage', 'truncated', 'empty',
                                    'bad_header'])
def test_corrupt_image_error_names_the_file(tmp_path, damage):
    path = tmp_path / f'{damage}.jpg'
    save_jpeg(path, photo(60, 80))
    data = path.read_bytes()
    path.write_bytes({'garbage': b'not an image at all' * 10,
                      'truncated': data[:len(data) // 2], 'empty': b'',
                      'bad_header': data[:2] + b'\x00' * 200 + data[-2:]
                      }[damage])
    with pytest.raises(CorruptImageError) as info:
        build()(dict(img_path=str(path)))
    assert str(path) in str(info.value)
    assert '\n' not in str(info.value)
    # one error class, in mmmask.errors (train.py prints it as one line)
    from mmmask.errors import CorruptImageError as Base, MMMaskError
    assert CorruptImageError is Base and isinstance(info.value, MMMaskError)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        build()(dict(img_path=str(tmp_path / 'nope.jpg')))
    assert build(ignore_empty=True)(
        dict(img_path=str(tmp_path / 'nope.jpg'))) is None


def test_bad_image_skipped_and_counted(tmp_path):
    from mmengine.logging import MMLogger
    path = tmp_path / 'bad.jpg'
    save_jpeg(path, photo(60, 80))
    path.write_bytes(path.read_bytes()[:300])
    t = build(skip_bad_images=True)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        assert t(dict(img_path=str(path))) is None
        assert t(dict(img_path=str(path))) is None
    finally:
        logger.removeHandler(handler)
    assert t.num_skipped == 2
    lines = [r.getMessage() for r in records
             if 'DecodeMultiViewCrops: skipped a bad image' in r.getMessage()]
    assert len(lines) == 2 and '(2 so far by this loader)' in lines[1]
    assert str(path) in lines[1] and records[1].levelno == logging.WARNING


def _odd_formats(tmp_path):
    """name -> (path, RGB it shows) of images in formats that are not
    8-bit 3-channel."""
    rgb = photo(90, 120)
    gray = np.asarray(Image.fromarray(rgb).convert('L'))
    out = {}
    p = tmp_path / 'gray.jpg'
    Image.fromarray(gray).save(p, quality=95)
    out['gray_jpeg'] = (p, np.stack([gray] * 3, -1))
    p = tmp_path / 'cmyk.jpg'
    Image.fromarray(rgb).convert('CMYK').save(p, quality=95)
    out['cmyk_jpeg'] = (p, rgb)
    p = tmp_path / 'palette.png'
    pal = Image.fromarray(rgb).convert('P')
    pal.save(p)
    out['palette_png'] = (p, np.asarray(pal.convert('RGB')))
    p = tmp_path / 'gray16.png'
    cv2.imwrite(str(p), gray.astype(np.uint16) * 257)
    out['gray16_png'] = (p, np.stack([gray] * 3, -1))
    p = tmp_path / 'rgb16.png'
    cv2.imwrite(str(p), rgb[..., ::-1].astype(np.uint16) * 257)
    out['rgb16_png'] = (p, rgb)
    p = tmp_path / 'rgba.png'
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
                    'RGBA').save(p)
    out['rgba_png'] = (p, rgb)
    return out


@pytest.mark.parametrize('name', ['gray_jpeg', 'cmyk_jpeg', 'palette_png',
                                  'gray16_png', 'rgb16_png', 'rgba_png'])
def test_odd_formats_become_three_channel_uint8(tmp_path, name):
    path, rgb = _odd_formats(tmp_path)[name]
    loaded = LoadImageFromFile()(dict(img_path=str(path)))['img']
    assert loaded.shape == rgb.shape and loaded.dtype == np.uint8
    tol = 6 if name == 'cmyk_jpeg' else 3  # lossy formats
    assert np.abs(loaded[..., ::-1].astype(int) - rgb).mean() < tol
    # the whole image as one view: the same pixels as LoadImageFromFile
    t = build(num_views=1, crop=dict(scale=(90, 120), crop_ratio_range=(1, 1),
                                     aspect_ratio_range=(4 / 3, 4 / 3)))
    out = t(dict(img_path=str(path)))
    view = out['img'][0]
    assert view.shape == (90, 120, 3) and view.dtype == np.uint8
    assert out['ori_shape'] == (90, 120)
    assert np.array_equal(view, loaded)


def test_image_smaller_than_the_crop_is_enlarged_as_per_image(tmp_path):
    path = save_jpeg(tmp_path / 'small.jpg', photo(30, 40))
    t = build()
    for seed in range(5):
        np.random.seed(seed)
        out = t(dict(img_path=path))
        ref, geoms = pillow_views(path, seed)
        np.testing.assert_allclose(out['crop_bbox'],
                                   [g.crop_box for g in geoms])
        for v, r in zip(out['img'], ref):
            assert v.shape == r.shape == (224, 224, 3)
            assert np.abs(v.astype(int) - r).mean() < 0.3
        assert out['decode_scale'] == 1


def test_exif_rotated_jpeg_is_drawn_on_the_rotated_size(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / 'rot.jpg'
    Image.fromarray(photo(100, 160)).save(path, quality=90,
                                          exif=exif.tobytes())
    loaded = LoadImageFromFile()(dict(img_path=str(path)))['img']
    assert loaded.shape[:2] == (160, 100)  # cv2 applies the orientation
    out = build(crop=dict(scale=32))(dict(img_path=str(path)))
    assert out['ori_shape'] == (160, 100)
    assert (out['crop_bbox'][:, 2] <= 100).all()
    assert (out['crop_bbox'][:, 3] <= 160).all()


def test_a_misread_header_falls_back_to_the_decoded_size(tmp_path,
                                                         monkeypatch):
    """Should the header say another size than the decoder gives, the
    views are drawn on the decoded image (never cut from a wrong size)."""
    from mmmask.datasets.transforms import decode_crop
    path = save_jpeg(tmp_path / 'a.jpg', photo(100, 160))
    monkeypatch.setattr(decode_crop, 'jpeg_header',
                        lambda data: (1600, 1000, 1))  # wrong, and large
    out = build(crop=dict(scale=32))(dict(img_path=path))
    assert out['ori_shape'] == (100, 160) and out['decode_scale'] == 1
    assert (out['crop_bbox'][:, 2] <= 160).all()
    assert (out['crop_bbox'][:, 3] <= 100).all()
