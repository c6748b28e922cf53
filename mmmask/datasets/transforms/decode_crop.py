"""Decode an image once and cut all its views: the CPU side of the split
pipeline.

In the split pipeline the data workers only read, decode and crop; colour
jitter, grayscale, blur and flip run batched on the device
(``ViewAugmentDataPreprocessor``). :class:`DecodeMultiViewCrops` replaces
``LoadImageFromFile`` + ``MultiView`` / ``GeometricMultiView`` with
``RandomResizedCrop`` views:

1. read the file's bytes (mmengine fileio, ``backend_args``) and, for a
   JPEG, its size from the header (:func:`jpeg_header`, no decoding);
2. draw every view's crop with mmpretrain's ``RandomResizedCrop`` draw
   (its ``rand_crop_params``: same arguments, same numpy draws, its attempts
   and its central-crop fallback), redrawn while the views overlap less
   than ``min_overlap`` (as :class:`GeometricMultiView`);
3. decode once, at 1/2, 1/4 or 1/8 scale (libjpeg-turbo's DCT scaling,
   through OpenCV) when every view's crop still has at least its output
   size in the reduced image (:func:`choose_decode_scale`), else at full
   size;
4. cut and resize each view from the uint8 array (:func:`resize_view`:
   PIL's antialiased filters through torch's uint8 kernel), with no PIL
   round trip, no copy of the crop or of the results dict, and views whose
   memory is already channel-first for ``PackInputs``.

Each view's :class:`ViewGeometry` maps original-image coordinates to view
coordinates through the decode scale and the crop, exactly as the pixels
were made, so ``SampleOverlapRegion`` and the device-side flip work on the
output.
"""
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmcv.transforms import BaseTransform

from mmmask.registry import TRANSFORMS
from .geometry import (OverlapRedraw, RandomResizedCrop, ViewGeometry,
                       views_per_group)
from .loading import (CorruptImageError, SkipBadImages, check_image_bytes,
                      decode_image_bytes)

__all__ = ['DecodeMultiViewCrops', 'jpeg_header', 'choose_decode_scale',
           'snap_crop', 'resize_view']

# start-of-frame markers (baseline, extended, progressive, lossless,
# arithmetic); 0xC4 (DHT), 0xC8 (JPG) and 0xCC (DAC) are not frames
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_REDUCED_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2,
                  4: cv2.IMREAD_REDUCED_COLOR_4,
                  8: cv2.IMREAD_REDUCED_COLOR_8}
_INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic')


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def _exif_orientation(tiff: bytes) -> int:
    """The orientation tag (0x0112) of IFD0 of an EXIF TIFF block, 1 when
    absent or unreadable."""
    if tiff[:2] not in (b'II', b'MM'):
        return 1
    order = 'little' if tiff[:2] == b'II' else 'big'
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd:ifd + 2], order)
    for k in range(count):
        entry = ifd + 2 + 12 * k
        if entry + 12 > len(tiff):
            break
        if int.from_bytes(tiff[entry:entry + 2], order) == 0x0112:
            return int.from_bytes(tiff[entry + 8:entry + 10], order)
    return 1


def jpeg_header(data: bytes) -> Optional[Tuple[int, int, int]]:
    """``(height, width, exif_orientation)`` read from a JPEG's markers
    without decoding it; None for data that is not a JPEG or whose frame
    header cannot be found before the first scan."""
    if data[:2] != b'\xff\xd8':
        return None
    i, n, orientation = 2, len(data), 1
    while i + 4 <= n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # no length field
            i += 2
            continue
        length = int.from_bytes(data[i + 2:i + 4], 'big')
        if marker in _SOF:
            if i + 9 > n:
                return None
            h = int.from_bytes(data[i + 5:i + 7], 'big')
            w = int.from_bytes(data[i + 7:i + 9], 'big')
            return (h, w, orientation) if h > 0 and w > 0 else None
        if marker == 0xE1 and data[i + 4:i + 10] == b'Exif\x00\x00':
            orientation = _exif_orientation(data[i + 10:i + 2 + length])
        if marker in (0xDA, 0xD9):  # a scan or the end before any frame
            return None
        i += 2 + length
    return None


def snap_crop(crop: Tuple[int, int, int, int], scale: int,
              shape: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """A crop ``(top, left, h, w)`` in original pixels -> ``(y0, x0, y1,
    x1)`` in the pixels of the image decoded at 1/``scale`` (of size
    ``shape`` = ceil(H / scale), ceil(W / scale)), each edge rounded to the
    nearest reduced pixel (an edge moves by at most ``scale / 2`` original
    pixels; scale 1 keeps the crop as it is)."""
    top, left, ch, cw = crop
    hr, wr = shape
    y0 = min(int(round(top / scale)), hr - 1)
    x0 = min(int(round(left / scale)), wr - 1)
    y1 = min(max(int(round((top + ch) / scale)), y0 + 1), hr)
    x1 = min(max(int(round((left + cw) / scale)), x0 + 1), wr)
    return y0, x0, y1, x1


def choose_decode_scale(crops: Sequence[Tuple[int, int, int, int]],
                        out_shapes: Sequence[Tuple[int, int]],
                        ori_shape: Tuple[int, int],
                        scales: Sequence[int] = (8, 4, 2)) -> int:
    """The largest decode scale ``s`` in ``scales`` at which every view's
    crop, snapped to the 1/s image (:func:`snap_crop`), still has at least
    its output height and width (so the final resize only shrinks, and no
    detail of the full-scale path is lost); 1 when none allows it.

    Args:
        crops: per view ``(top, left, h, w)`` in original pixels.
        out_shapes: per view ``(out_h, out_w)``.
        ori_shape: ``(H, W)`` of the original image.
    """
    h, w = ori_shape
    for s in sorted(scales, reverse=True):
        shape = (-(-h // s), -(-w // s))
        ok = True
        for crop, (oh, ow) in zip(crops, out_shapes):
            if crop[2] < s * oh or crop[3] < s * ow:
                ok = False
                break
            y0, x0, y1, x1 = snap_crop(crop, s, shape)
            if y1 - y0 < oh or x1 - x0 < ow:
                ok = False
                break
        if ok:
            return s
    return 1


def resize_view(crop: np.ndarray, out_shape: Tuple[int, int],
                interpolation: str = 'bilinear') -> np.ndarray:
    """Resize a (h, w, 3) uint8 crop to ``out_shape`` = (out_h, out_w) as
    PIL resamples (what mmcv's ``backend='pillow'`` and torchvision do):
    torch's uint8 antialiased interpolation (``F.interpolate(...,
    antialias=True)``: PIL's separable filters, their support widened by
    the scale factor when shrinking), read from the crop without a copy;
    ``'nearest'`` is OpenCV's nearest neighbour.

    Returns an (out_h, out_w, 3) uint8 array whose memory is channel-first
    (the interpolation's output), so ``PackInputs`` makes its (3, H, W)
    tensor without a copy.
    """
    h, w = crop.shape[:2]
    oh, ow = out_shape
    if interpolation == 'nearest':
        return cv2.resize(crop, (ow, oh), interpolation=cv2.INTER_NEAREST)
    if not crop.flags.writeable:  # torch warns on read-only memory
        crop = crop.copy()
    x = torch.from_numpy(crop).permute(2, 0, 1)[None]  # (1, 3, h, w) view
    if (h, w) == (oh, ow):
        return x[0].contiguous().permute(1, 2, 0).numpy()
    y = F.interpolate(x, size=(oh, ow), mode=interpolation, antialias=True,
                      align_corners=False)  # (1, 3, oh, ow)
    return y[0].contiguous().permute(1, 2, 0).numpy()


def _crop_matrix(box: Tuple[int, int, int, int], scale: int,
                 out_shape: Tuple[int, int]) -> np.ndarray:
    """(3, 3) original -> view map of a view cut at ``box`` = (y0, x0, y1,
    x1) from the image decoded at 1/``scale`` and resized to ``out_shape``:
    ``view = diag(sx, sy) (original / scale - (x0, y0))``."""
    y0, x0, y1, x1 = box
    oh, ow = out_shape
    sx, sy = ow / (x1 - x0), oh / (y1 - y0)
    return np.array([[sx / scale, 0., -x0 * sx],
                     [0., sy / scale, -y0 * sy],
                     [0., 0., 1.]])


# --------------------------------------------------------------------------
# the transform
# --------------------------------------------------------------------------
@TRANSFORMS.register_module()
class DecodeMultiViewCrops(SkipBadImages, OverlapRedraw,
                           BaseTransform):
    """Read, decode (at reduced scale when lossless) and cut every
    ``RandomResizedCrop`` view of one image.

    Replaces ``LoadImageFromFile`` + ``GeometricMultiView`` (or
    ``MultiView``) with only ``RandomResizedCrop`` in the view pipelines;
    the rest of the view augmentation runs on the device.

    **Required keys**: ``img_path``.

    **Added keys**: ``img`` (list of V (out_h, out_w, 3) uint8 BGR views),
    ``img_shape`` and ``ori_shape`` (H, W of the original image, as after
    ``LoadImageFromFile`` + ``MultiView``), ``view_geometry`` (list of V
    :class:`ViewGeometry`; the matrix maps original-image pixels to view
    pixels through the decode scale and the crop), ``crop_bbox`` ((V, 4)
    float64 x0, y0, x1, y1 of each view in original pixels),
    ``decode_scale`` (1, 2, 4 or 8).

    The crops are drawn by mmpretrain's ``RandomResizedCrop.rand_crop_params``
    (numpy's global random state, view after view), so under one seed they
    are those of ``GeometricMultiView`` with ``RandomResizedCrop`` views.
    At a reduced decode scale ``s`` each crop edge is rounded to the 1/s
    pixel grid (moves by at most ``s / 2`` original pixels; the recorded
    geometry is the rounded crop's). Non-JPEG files and JPEGs with a
    rotating EXIF orientation are decoded in full by mmcv (which applies the
    orientation), and drawn on the decoded size.

    In a config (MoCo v2 / DenseCL; MaskCo adds ``min_overlap`` and
    ``SampleOverlapRegion``), with ``ViewAugmentDataPreprocessor`` doing the
    rest on the device::

        train_pipeline = [
            dict(type='DecodeMultiViewCrops', num_views=2,
                 crop=dict(scale=224, crop_ratio_range=(0.2, 1.))),
            dict(type='PackInputs', algorithm_keys=['view_geometry']),
        ]

    Args:
        num_views (int | list[int]): views per crop config (2).
        crop (dict | list[dict]): ``RandomResizedCrop`` arguments, one dict
            per group of views (``scale``, ``crop_ratio_range``,
            ``aspect_ratio_range``, ``max_attempts``, ``interpolation``;
            ``type`` and ``backend`` are accepted and ignored: the resize
            is always antialiased as PIL's, see :func:`resize_view`), so a
            config's ``RandomResizedCrop`` dict can be passed as it is.
            Default: 224 px, crop_ratio_range (0.08, 1).
        min_overlap (float): redraw all crops (up to ``max_attempts`` times)
            until the views overlap by at least this fraction of the
            smallest crop's area, as :class:`GeometricMultiView`; 0 accepts
            any draw.
        max_attempts (int): draws before the last one is kept (10).
        reduced_decode (bool): allow the 1/2, 1/4, 1/8 JPEG decode (True).
        skip_bad_images (bool): log, count and skip (return None) a corrupt
            image instead of raising :class:`CorruptImageError`.
        ignore_empty (bool): return None for a missing or bad file, as
            mmcv's ``LoadImageFromFile``.
        backend_args (dict, optional): mmengine fileio backend arguments.
    """

    def __init__(self, num_views: Union[int, Sequence[int]] = 2,
                 crop: Union[dict, Sequence[dict]] = dict(scale=224),
                 min_overlap: float = 0.0, max_attempts: int = 10,
                 reduced_decode: bool = True, skip_bad_images: bool = False,
                 ignore_empty: bool = False,
                 backend_args: Optional[dict] = None) -> None:
        SkipBadImages.__init__(self, skip_bad_images)
        OverlapRedraw.__init__(self, min_overlap, max_attempts)
        crops = [crop] if isinstance(crop, dict) else list(crop)
        self.num_views = views_per_group('DecodeMultiViewCrops', num_views,
                                         len(crops), 'crop config')
        croppers = []
        for cfg in crops:
            if cfg.get('type', 'RandomResizedCrop') != 'RandomResizedCrop':
                raise ValueError(
                    f'DecodeMultiViewCrops: crop configs are '
                    f"RandomResizedCrop arguments, got type={cfg['type']!r}")
            cfg = {k: v for k, v in cfg.items() if k not in ('type', 'backend')}
            if cfg.get('interpolation', 'bilinear') not in _INTERPOLATIONS:
                raise ValueError(
                    f'DecodeMultiViewCrops: interpolation must be one of '
                    f'{_INTERPOLATIONS}, got {cfg["interpolation"]!r}')
            croppers.append(RandomResizedCrop(**cfg))
        self.croppers = [c for c, n in zip(croppers, self.num_views)
                         for _ in range(n)]
        self.reduced_decode = reduced_decode
        self.ignore_empty = ignore_empty
        self.backend_args = backend_args

    # ---------------------------------------------------------------- draws
    def draw_crops(self, ori_shape: Tuple[int, int]
                   ) -> List[Tuple[int, int, int, int]]:
        """Each view's ``(top, left, h, w)`` in original pixels, redrawn
        for ``min_overlap``."""
        shape_only = np.empty((*ori_shape, 0), np.uint8)  # no pixels
        return self.redraw(
            lambda: [tuple(int(v) for v in c.rand_crop_params(shape_only))
                     for c in self.croppers],
            lambda crops: [(left, top, left + cw, top + ch)
                           for top, left, ch, cw in crops])

    # --------------------------------------------------------------- decode
    def _decode(self, data: bytes, filename: str, scale: int) -> np.ndarray:
        # what mmcv.imfrombytes(flag='color') does at scale 1, and the DCT
        # scaled decode of the same libjpeg-turbo at 2, 4, 8
        img = cv2.imdecode(np.frombuffer(data, np.uint8), _REDUCED_FLAGS[scale])
        if img is None:
            raise CorruptImageError(
                f'cannot decode image (corrupt or not an image): {filename}')
        return img

    def _views(self, data: bytes, filename: str):
        """(views, geometries, crop boxes (V, 4), decode scale, original
        shape)."""
        check_image_bytes(data, filename)
        header = jpeg_header(data)
        img = None
        if header is not None and header[2] in (0, 1):
            ori_shape = header[:2]
            crops = self.draw_crops(ori_shape)
            out_shapes = [tuple(c.scale) for c in self.croppers]
            scale = (choose_decode_scale(crops, out_shapes, ori_shape)
                     if self.reduced_decode else 1)
            img = self._decode(data, filename, scale)
            expect = (-(-ori_shape[0] // scale), -(-ori_shape[1] // scale))
            if img.shape[:2] != expect:  # a header this parser misread
                img = None
        if img is None:  # not a JPEG, or rotated by EXIF: decode, then draw
            img = decode_image_bytes(data, filename)
            ori_shape, scale = img.shape[:2], 1
            crops = self.draw_crops(ori_shape)
        ori_shape = tuple(ori_shape)
        views, geoms, boxes = [], [], []
        for cropper, crop in zip(self.croppers, crops):
            out_shape = tuple(cropper.scale)
            box = snap_crop(crop, scale, img.shape[:2])
            y0, x0, y1, x1 = box
            views.append(resize_view(img[y0:y1, x0:x1], out_shape,
                                     cropper.interpolation))
            geoms.append(ViewGeometry(
                matrix=_crop_matrix(box, scale, out_shape),
                ori_shape=ori_shape, view_shape=out_shape))
            # in original pixels (the last reduced pixel may pass the edge)
            boxes.append((x0 * scale, y0 * scale,
                          min(x1 * scale, ori_shape[1]),
                          min(y1 * scale, ori_shape[0])))
        return views, geoms, np.array(boxes, np.float64), scale, ori_shape

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        out = self.read_and_decode(filename,
                                   lambda data: self._views(data, filename),
                                   self.backend_args, self.ignore_empty)
        if out is None:
            return None
        views, geoms, boxes, scale, ori_shape = out
        results['img'] = views
        results['img_shape'] = ori_shape
        results['ori_shape'] = ori_shape
        results['view_geometry'] = geoms
        results['crop_bbox'] = boxes
        results['decode_scale'] = scale
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_views={self.num_views}, '
                f'croppers={self.croppers}, '
                f'min_overlap={self.min_overlap}, '
                f'max_attempts={self.max_attempts}, '
                f'reduced_decode={self.reduced_decode})')
