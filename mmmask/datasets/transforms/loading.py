"""Image loading that names the file it fails on."""
import logging
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile as _MMCVLoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log

from mmmask.errors import MMMaskError
from mmmask.registry import TRANSFORMS


class CorruptImageError(MMMaskError, ValueError):
    """An image file that exists but cannot be decoded (or is truncated)."""


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


@TRANSFORMS.register_module()
class LoadImageFromFile(_MMCVLoadImageFromFile):
    """mmcv's ``LoadImageFromFile`` with errors that name the file.

    A missing file raises ``FileNotFoundError``; an empty, truncated or
    undecodable one :class:`CorruptImageError`, both with the path.

    Args:
        skip_bad_images (bool): instead of raising
            :class:`CorruptImageError`, log a warning that names the file and
            counts the images this transform has skipped so far and return
            ``None``; mmengine's datasets then load another, random, sample
            in its place (``max_refetch`` times at most). Defaults to False.
        **kwargs: mmcv's arguments (``to_float32``, ``color_type``,
            ``imdecode_backend``, ``ignore_empty``, ``backend_args``).
    """

    def __init__(self, skip_bad_images: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.skip_bad_images = skip_bad_images
        self.num_skipped = 0

    def _skip(self, err: Exception) -> None:
        self.num_skipped += 1
        print_log(f'LoadImageFromFile: skipped a bad image '
                  f'({self.num_skipped} so far by this loader): {err}',
                  logger='current', level=logging.WARNING)

    def transform(self, results: dict) -> Optional[dict]:
        filename = results['img_path']
        try:
            data = fileio.get(filename, backend_args=self.backend_args)
        except FileNotFoundError:
            if self.ignore_empty:
                return None
            raise FileNotFoundError(f'image file not found: {filename}')
        try:
            check_image_bytes(data, filename)
            img = mmcv.imfrombytes(data, flag=self.color_type,
                                   backend=self.imdecode_backend)
            if img is None:
                raise CorruptImageError(
                    f'cannot decode image (corrupt or not an image): {filename}')
        except Exception as exc:
            if self.ignore_empty:
                return None
            err = exc if isinstance(exc, CorruptImageError) else \
                CorruptImageError(f'cannot decode image {filename}: {exc}')
            if self.skip_bad_images:
                self._skip(err)
                return None
            raise err from (None if err is exc else exc)
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
