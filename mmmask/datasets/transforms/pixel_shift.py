"""CMAE's pixel-shifted online / target views."""
from typing import List, Optional

import numpy as np
from mmcv.transforms import BaseTransform, Compose

from mmmask.registry import TRANSFORMS


@TRANSFORMS.register_module()
class PixelShiftViews(BaseTransform):
    """Two views of one image that differ by a small shift (CMAE's
    pixel-shifting view augmentation).

    ``base_transforms`` (RandomResizedCrop to ``crop_size + max_shift``
    = 256, scale (0.2, 1), bicubic; flip) make one image ``I``; then

    * online view = ``I[0:S, 0:S]`` (S = ``crop_size``), then
      ``online_transforms`` (none in CMAE);
    * target view = ``I[dh:dh + S, dw:dw + S]`` with ``dh, dw ~
      U{0, ..., max_shift - 1}`` independently, then ``target_transforms``
      (MoCo v2 colour: ColorJitter(0.4, 0.4, 0.4, 0.1) p 0.8, grayscale p
      0.2, Gaussian blur sigma [0.1, 2] p 0.5).

    So online pixel (y + dh, x + dw) and target pixel (y, x) are the same
    point of ``I`` before colour augmentation.

    **Added keys**: ``img`` = [online, target] (each S x S x 3),
    ``pixel_shift`` = ``np.array([dh, dw])`` (put it into the data sample
    with ``PackInputs(algorithm_keys=['pixel_shift'])``).

    Randomness: numpy's global state (seeded per worker by the runner).

    Args:
        base_transforms (list[dict]): the shared crop (to S + max_shift).
        crop_size (int): S (224).
        max_shift (int): shifts are drawn in [0, max_shift) (32).
        target_transforms (list[dict]): the target view's colour augmentation.
        online_transforms (list[dict], optional): the online view's.
    """

    def __init__(self, base_transforms: List[dict], crop_size: int = 224,
                 max_shift: int = 32,
                 target_transforms: Optional[List[dict]] = None,
                 online_transforms: Optional[List[dict]] = None) -> None:
        if crop_size <= 0 or max_shift <= 0:
            raise ValueError(f'crop_size and max_shift must be > 0, got '
                             f'{crop_size}, {max_shift}')
        self.base = Compose([TRANSFORMS.build(t) for t in base_transforms])
        self.crop_size = crop_size
        self.max_shift = max_shift
        self.target = Compose([TRANSFORMS.build(t)
                               for t in target_transforms or []])
        self.online = Compose([TRANSFORMS.build(t)
                               for t in online_transforms or []])

    def transform(self, results: dict) -> dict:
        results = self.base(results)
        img = results['img']
        s, need = self.crop_size, self.crop_size + self.max_shift - 1
        if img.shape[0] < need or img.shape[1] < need:
            raise ValueError(f'PixelShiftViews: the base transforms gave '
                             f'{img.shape[:2]}, need at least {need} x {need} '
                             f'(crop_size + max_shift - 1); make their crop '
                             f'{s + self.max_shift}')
        dh, dw = (int(v) for v in np.random.randint(0, self.max_shift, 2))
        online = self.online(dict(results, img=img[:s, :s].copy(),
                                  img_shape=(s, s)))
        target = self.target(dict(results, img=img[dh:dh + s,
                                                   dw:dw + s].copy(),
                                  img_shape=(s, s)))
        results['img'] = [online['img'], target['img']]
        results['img_shape'] = (s, s)
        results['pixel_shift'] = np.array([dh, dw], dtype=np.int64)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(crop_size={self.crop_size}, '
                f'max_shift={self.max_shift}, base={self.base}, '
                f'target={self.target}, online={self.online})')
