"""Run BGR-assuming transforms on RGB images (datasets held as RGB)."""
from typing import List

from mmcv.transforms import BaseTransform, Compose

from mmmask.registry import TRANSFORMS


@TRANSFORMS.register_module()
class AsBGR(BaseTransform):
    """Apply ``transforms`` to an RGB image as if it were BGR.

    mmcv's colour operations assume BGR, the order of images loaded from
    files (``LoadImageFromFile``): ``ColorJitter``'s contrast and
    saturation greys (``bgr2gray``, or PIL after a BGR -> RGB flip), its hue
    (BGR -> HSV) and ``RandomGrayscale``'s ``channel_weights``
    (0.114, 0.587, 0.2989 for B, G, R). Datasets held in memory as RGB
    arrays (mmpretrain's CIFAR-10 / CIFAR-100) would get the red and blue
    weights swapped: a pure-red pixel would turn 0.114 * 255 grey instead
    of 0.299 * 255. This wrapper reverses the channels of ``results['img']``
    (RGB -> BGR), runs ``transforms`` and reverses them back, so the
    wrapped transforms see the order they were written for.

    Args:
        transforms (list[dict]): the transforms to run in BGR order (e.g.
            ``RandomApply(ColorJitter)``, ``RandomGrayscale``); only
            channel-agnostic changes besides (no resizing).
    """

    def __init__(self, transforms: List[dict]) -> None:
        self.transforms = Compose(transforms)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim != 3 or img.shape[-1] != 3:
            raise ValueError(f'AsBGR needs an (H, W, 3) image, got shape '
                             f'{tuple(img.shape)}')
        results['img'] = img[..., ::-1].copy()
        results = self.transforms(results)
        results['img'] = results['img'][..., ::-1].copy()
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(transforms={self.transforms})'
