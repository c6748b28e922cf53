"""Run any registered mask generator inside the data pipeline."""
from typing import Optional

from mmcv.transforms import BaseTransform

from mmmask.registry import MASK_GENERATORS, TRANSFORMS


@TRANSFORMS.register_module()
class GenerateMask(BaseTransform):
    """Draw a mask with a generator from ``MASK_GENERATORS``.

    **Added keys**: ``key`` (default ``'mask'``, which mmpretrain's
    ``PackInputs`` puts into ``data_sample.mask``) and, with ``info_key``,
    the generator's other outputs (its choices) as one dict.

    Pixel-space generators get ``image_size=(H, W)`` of ``results['img']``;
    token-space generators know their grid from their config.

    Randomness comes from numpy's global state, which the runner seeds per
    dataloader worker, so masks are reproducible under a fixed seed.

    Args:
        generator (dict): a ``MASK_GENERATORS`` config.
        key (str): where the mask goes.
        info_key (str, optional): where the generator's choices go.
    """

    def __init__(self, generator: dict, key: str = 'mask',
                 info_key: Optional[str] = None) -> None:
        self.generator = MASK_GENERATORS.build(generator)
        self.key = key
        self.info_key = info_key

    def transform(self, results: dict) -> dict:
        context = {}
        if getattr(self.generator, 'space', 'token') == 'pixel':
            context['image_size'] = tuple(results['img'].shape[:2])
        out = self.generator(**context)
        results[self.key] = out.pop('mask')
        if self.info_key is not None:
            results[self.info_key] = out
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(generator={self.generator!r}, '
                f'key={self.key!r}, info_key={self.info_key!r})')
