"""MaskCo's region: a box in the overlap of two views, in both views."""
from typing import Optional

import numpy as np
from mmcv.transforms import BaseTransform

from mmmask.registry import MASK_GENERATORS, TRANSFORMS
from .geometry import (map_boxes, map_boxes_from_original, overlap_box)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a (..., 4) and b (..., 4) (broadcast)."""
    lt = np.maximum(a[..., :2], b[..., :2])
    rb = np.minimum(a[..., 2:], b[..., 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa
    return inter / (area(a) + area(b) - inter)


@TRANSFORMS.register_module()
class SampleOverlapRegion(BaseTransform):
    """Sample one region in the overlap of a query and a key view (MaskCo).

    Needs ``view_geometry`` from :class:`GeometricMultiView`. The generator
    (a ``MASK_GENERATORS`` box generator, default ``RegionMaskGenerator``
    with sides 0.3-0.6 of the overlap) draws the box inside the overlap
    mapped into the query view; the box is then mapped into every view.

    **Added keys**:

    * ``regions`` (V, 4) float32: the region in each view's pixels;
    * ``region_valid`` (bool): False when the views do not overlap (the
      box is then drawn in the whole query view and the algorithm should
      leave the sample out of the region loss);
    * ``mask`` (H, W) bool: the region in the query view (what to fill);
    * ``neg_regions`` (K, 4) float32: ``num_neg_regions`` other boxes in the
      key view with IoU < ``neg_max_iou`` with the region (same-image
      negatives, MaskCo's optional extra negatives; K = 0 by default).

    Args:
        generator (dict): box generator config.
        query_view (int): index of the masked view (0).
        key_view (int): index of the view the negatives are taken from (1).
        num_neg_regions (int): K (0).
        neg_max_iou (float): IoU limit of a negative with the region (0.3).
    """

    def __init__(self, generator: dict = dict(type='RegionMaskGenerator'),
                 query_view: int = 0, key_view: int = 1,
                 num_neg_regions: int = 0, neg_max_iou: float = 0.3,
                 max_tries: int = 50) -> None:
        self.generator = MASK_GENERATORS.build(generator)
        self.query_view = query_view
        self.key_view = key_view
        if num_neg_regions < 0:
            raise ValueError(f'num_neg_regions must be >= 0, got '
                             f'{num_neg_regions}')
        self.num_neg_regions = int(num_neg_regions)
        self.neg_max_iou = float(neg_max_iou)
        self.max_tries = int(max_tries)

    def transform(self, results: dict) -> dict:
        geoms = results.get('view_geometry')
        if geoms is None:
            raise KeyError('SampleOverlapRegion needs view_geometry: put it '
                           'after a GeometricMultiView transform')
        q_geom, k_geom = geoms[self.query_view], geoms[self.key_view]
        overlap = overlap_box(q_geom, k_geom)
        valid = overlap is not None
        bounds = (map_boxes_from_original(overlap, q_geom) if valid else None)
        out = self.generator(bounds=bounds, image_size=q_geom.view_shape)
        q_box = out['box']
        regions = np.stack([map_boxes(q_box, q_geom, g) for g in geoms])
        results['regions'] = regions.astype(np.float32)
        results['region_valid'] = valid
        results['mask'] = out['mask']
        results['neg_regions'] = self._negatives(
            regions[self.key_view], k_geom).astype(np.float32)
        return results

    def _negatives(self, pos: np.ndarray, k_geom) -> np.ndarray:
        """K boxes in the key view with IoU < neg_max_iou with ``pos``."""
        boxes = []
        for _ in range(self.num_neg_regions * self.max_tries):
            if len(boxes) == self.num_neg_regions:
                break
            box = self.generator(image_size=k_geom.view_shape)['box']
            if box_iou(box, pos) < self.neg_max_iou:
                boxes.append(box)
        while len(boxes) < self.num_neg_regions:  # crowded: accept any box
            boxes.append(self.generator(image_size=k_geom.view_shape)['box'])
        return np.asarray(boxes, dtype=np.float64).reshape(-1, 4)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(generator={self.generator!r}, '
                f'query_view={self.query_view}, key_view={self.key_view}, '
                f'num_neg_regions={self.num_neg_regions})')
