"""Image loading that names the file it fails on."""
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile as _MMCVLoadImageFromFile
from mmengine import fileio

from mmmask.registry import TRANSFORMS


class CorruptImageError(ValueError):
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
    undecodable one :class:`CorruptImageError`, both with the path. Same
    arguments as mmcv's transform.
    """

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
        except Exception as err:
            if self.ignore_empty:
                return None
            if isinstance(err, CorruptImageError):
                raise
            raise CorruptImageError(
                f'cannot decode image {filename}: {err}') from err
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results
