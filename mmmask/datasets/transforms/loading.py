"""Image loading that names the file it fails on.

The pieces are shared by :class:`LoadImageFromFile` and the fused
decode-and-crop transform (``decode_crop.py``): :func:`read_image_bytes`
(missing file -> ``FileNotFoundError`` with the path),
:func:`check_image_bytes` / :func:`decode_image_bytes` (empty, truncated or
undecodable -> :class:`CorruptImageError` with the path) and
:class:`SkipBadImages` (``skip_bad_images=True``: warn, count, return None;
its ``read_and_decode`` is the one place of that policy).

Colour: with the default ``color_type='color'`` (cv2 backend) every image
comes out as (H, W, 3) uint8 BGR: grayscale is replicated, CMYK JPEGs and
palette PNGs are converted, alpha is dropped and 16-bit PNGs are scaled to 8
bits.
"""
import logging
from typing import Any, Callable, Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile as _MMCVLoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log

from mmmask.errors import CorruptImageError
from mmmask.registry import TRANSFORMS

__all__ = ['CorruptImageError', 'check_image_bytes', 'read_image_bytes',
           'decode_image_bytes', 'SkipBadImages', 'LoadImageFromFile']


def check_image_bytes(data: bytes, filename: str) -> None:
    """Raise :class:`CorruptImageError` for empty or visibly truncated
    JPEG/PNG data (decoders often return a partial image for those)."""
    if not data:
        raise CorruptImageError(f'image file is empty: {filename}')
    if data[:2] == b'\xff\xd8' and not data.rstrip(b'\x00').endswith(b'\xff\xd9'):
        raise CorruptImageError(
            f'JPEG image is truncated (no end-of-image marker): {filename}')
    if data[:8] == b'\x89PNG\r\n\x1a\n' and b'IEND' not in data[-32:]:
        raise CorruptImageError(
            f'PNG image is truncated (no IEND chunk): {filename}')


def read_image_bytes(filename: str,
                     backend_args: Optional[dict] = None) -> bytes:
    """The file's bytes through mmengine's fileio (any storage backend);
    ``FileNotFoundError`` naming the file when it does not exist."""
    try:
        return fileio.get(filename, backend_args=backend_args)
    except FileNotFoundError:
        raise FileNotFoundError(f'image file not found: {filename}') from None


def decode_image_bytes(data: bytes, filename: str, flag: str = 'color',
                       backend: Optional[str] = None) -> np.ndarray:
    """``mmcv.imfrombytes`` that raises :class:`CorruptImageError` naming
    the file for empty, truncated or undecodable data."""
    try:
        check_image_bytes(data, filename)
        img = mmcv.imfrombytes(data, flag=flag, backend=backend)
    except CorruptImageError:
        raise
    except Exception as exc:
        raise CorruptImageError(
            f'cannot decode image {filename}: {exc}') from exc
    if img is None:
        raise CorruptImageError(
            f'cannot decode image (corrupt or not an image): {filename}')
    return img


class SkipBadImages:
    """``skip_bad_images``: a transform that meets a bad image logs a
    warning naming the file and counting the images it has skipped so far,
    and returns ``None``; mmengine's datasets then load another, random,
    sample in its place (``max_refetch`` times at most)."""

    def __init__(self, skip_bad_images: bool = False) -> None:
        self.skip_bad_images = skip_bad_images
        self.num_skipped = 0

    def _skip(self, err: Exception) -> None:
        self.num_skipped += 1
        print_log(f'{type(self).__name__}: skipped a bad image '
                  f'({self.num_skipped} so far by this loader): {err}',
                  logger='current', level=logging.WARNING)

    def read_and_decode(self, filename: str, decode: Callable[[bytes], Any],
                        backend_args: Optional[dict] = None,
                        ignore_empty: bool = False) -> Optional[Any]:
        """``decode(bytes of filename)`` under the bad-image policy shared
        by the loaders: a missing file raises ``FileNotFoundError`` (None
        with ``ignore_empty``); a :class:`CorruptImageError` from
        ``decode`` returns None with ``ignore_empty``, is logged, counted
        and skipped (None) with ``skip_bad_images``, else raised."""
        try:
            data = read_image_bytes(filename, backend_args)
        except FileNotFoundError:
            if ignore_empty:
                return None
            raise
        try:
            return decode(data)
        except CorruptImageError as err:
            if ignore_empty:
                return None
            if self.skip_bad_images:
                self._skip(err)
                return None
            raise


@TRANSFORMS.register_module()
class LoadImageFromFile(SkipBadImages, _MMCVLoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with errors that name the file.

    A missing file raises ``FileNotFoundError``; an empty, truncated or
    undecodable one :class:`CorruptImageError`, both with the path.

    Args:
        skip_bad_images (bool): instead of raising
            :class:`CorruptImageError`, log a warning that names the file and
            counts the images this transform has skipped so far and return
            ``None`` (see :class:`SkipBadImages`). Defaults to False.
        **kwargs: mmcv's arguments (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``ignore_empty``, ``backend_args``).
    """

    def __init__(self, skip_bad_images: bool = False, **kwargs) -> None:
        _MMCVLoadImageFromFile.__init__(self, **kwargs)
        SkipBadImages.__init__(self, skip_bad_images)

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        img = self.read_and_decode(
            filename, lambda data: decode_image_bytes(
                data, filename, flag=self.color_type,
                backend=self.imdecode_backend),
            self.backend_args, self.ignore_empty)
        if img is None:
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
