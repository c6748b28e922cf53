"""Views that keep their geometry.

mmpretrain's ``MultiView`` returns the views' pixels only, so an algorithm
cannot tell where a region of one view lies in another. Here every geometric
transform of a view composes a 3 x 3 matrix ``view_matrix`` that maps
original-image coordinates to view coordinates, and
:class:`GeometricMultiView` packs one :class:`ViewGeometry` per view (crop
box in the original image, flip, scale, view size, any mask) into
``results['view_geometry']``; ``PackInputs(algorithm_keys=['view_geometry'])``
carries it into the data samples.

Coordinates are continuous pixel coordinates: pixel ``(i, j)`` (row, col)
covers ``[j, j + 1) x [i, i + 1)``; points are ``(x, y)``, boxes
``(x0, y0, x1, y1)``.

The geometric transforms registered here (``RandomResizedCrop``,
``RandomFlip``) shadow mmpretrain's / mmcv's in the ``mmmask`` scope: same
arguments, same random draws, same pixels, plus the recorded geometry.
"""
import copy
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
from mmcv.transforms import BaseTransform, Compose
from mmcv.transforms import RandomFlip as _MMCVRandomFlip
from mmpretrain.datasets.transforms import \
    RandomResizedCrop as _MMPretrainRandomResizedCrop

from mmmask.registry import TRANSFORMS


# --------------------------------------------------------------------------
# the geometry of one view, and pure functions between views
# --------------------------------------------------------------------------
@dataclass
class ViewGeometry:
    """Where a view came from.

    Attributes:
        matrix: (3, 3) affine map, original (x, y, 1) -> view (x, y, 1).
        ori_shape: (h, w) of the original image.
        view_shape: (h, w) of the view.
        mask: optional mask made for this view (any shape), or None.
    """
    matrix: np.ndarray
    ori_shape: Tuple[int, int]
    view_shape: Tuple[int, int]
    mask: Optional[np.ndarray] = None

    @property
    def crop_box(self) -> np.ndarray:
        """(4,) the view's extent in original coordinates (x0, y0, x1, y1)."""
        h, w = self.view_shape
        return map_boxes_to_original(np.array([0., 0., w, h]), self)

    @property
    def flip(self) -> bool:
        """Whether the view is flipped left-right w.r.t. the original."""
        return bool(self.matrix[0, 0] < 0)

    @property
    def vflip(self) -> bool:
        """Whether the view is flipped upside down."""
        return bool(self.matrix[1, 1] < 0)

    @property
    def scale(self) -> Tuple[float, float]:
        """(sx, sy): view pixels per original pixel along x and y."""
        return float(abs(self.matrix[0, 0])), float(abs(self.matrix[1, 1]))


def affine_inverse(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a (3, 3) affine map ``[[A, t], [0, 0, 1]]``:
    ``[[A^-1, -A^-1 t], [0, 0, 1]]`` with the 2 x 2 inverse written out
    (``np.linalg.inv`` costs about 1 ms a call here: LAPACK dispatch on
    every box of every sample)."""
    m = np.asarray(matrix, dtype=np.float64)
    (a, b), (c, d) = m[0, :2], m[1, :2]
    det = a * d - b * c
    if det == 0:
        raise ValueError(f'view map is not invertible: {m.tolist()}')
    inv = np.array([[d, -b], [-c, a]]) / det
    out = np.eye(3)
    out[:2, :2] = inv
    out[:2, 2] = -inv @ m[:2, 2]
    return out


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    pts = np.asarray(points, dtype=np.float64)
    return pts @ matrix[:2, :2].T + matrix[:2, 2]


def _boxes_through(matrix: np.ndarray, boxes) -> np.ndarray:
    """Boxes (..., 4) through an axis-aligned affine map (flips re-sorted)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    p0 = _apply(matrix, boxes[..., :2])
    p1 = _apply(matrix, boxes[..., 2:])
    return np.concatenate([np.minimum(p0, p1), np.maximum(p0, p1)], axis=-1)


def map_points(points, src: ViewGeometry, dst: ViewGeometry) -> np.ndarray:
    """Points (..., 2) in ``src`` view coordinates -> ``dst`` view coordinates
    (through the original image)."""
    return _apply(dst.matrix @ affine_inverse(src.matrix), points)


def map_boxes(boxes, src: ViewGeometry, dst: ViewGeometry) -> np.ndarray:
    """Boxes (..., 4) in ``src`` view coordinates -> ``dst`` view coordinates.

    Exact for crops, rescales and flips (axis-aligned maps); a box flipped
    left-right keeps ``x0 <= x1``.
    """
    return _boxes_through(dst.matrix @ affine_inverse(src.matrix), boxes)


def map_boxes_to_original(boxes, geom: ViewGeometry) -> np.ndarray:
    """Boxes (..., 4) in view coordinates -> original-image coordinates."""
    return _boxes_through(affine_inverse(geom.matrix), boxes)


def map_boxes_from_original(boxes, geom: ViewGeometry) -> np.ndarray:
    """Boxes (..., 4) in original-image coordinates -> view coordinates."""
    return _boxes_through(geom.matrix, boxes)


def overlap_box(*geoms: ViewGeometry) -> Optional[np.ndarray]:
    """The intersection of the views' crop boxes in original coordinates,
    (4,), or None when they do not overlap."""
    boxes = np.stack([g.crop_box for g in geoms])
    box = np.concatenate([boxes[:, :2].max(0), boxes[:, 2:].min(0)])
    if box[2] <= box[0] or box[3] <= box[1]:
        return None
    return box


def overlap_fraction(boxes) -> float:
    """Area of the intersection of boxes (N, 4) (x0, y0, x1, y1) over the
    smallest box's area; 0 when they do not all overlap."""
    boxes = np.asarray(boxes, dtype=np.float64)
    x0, y0 = boxes[:, 0].max(), boxes[:, 1].max()
    x1, y1 = boxes[:, 2].min(), boxes[:, 3].min()
    if x1 <= x0 or y1 <= y0:
        return 0.0
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return float((x1 - x0) * (y1 - y0) / areas.min())


def views_per_group(owner: str, num_views: Union[int, Sequence[int]],
                    num_groups: int, group: str) -> List[int]:
    """``num_views`` as one count per group of views (an int: one group);
    ``ValueError`` naming ``owner`` when the counts and groups differ."""
    counts = [num_views] if isinstance(num_views, int) else list(num_views)
    if len(counts) != num_groups:
        raise ValueError(f'{owner}: {num_groups} {group}s but '
                         f'num_views={counts} (one count per {group})')
    return [int(n) for n in counts]


class OverlapRedraw:
    """Redraw a set of views until their crops overlap enough: shared by
    :class:`GeometricMultiView` and ``DecodeMultiViewCrops``.

    Args:
        min_overlap (float): the least accepted area of the intersection of
            all crops over the smallest crop's area (:func:`overlap_fraction`),
            in [0, 1]; 0 accepts any draw.
        max_attempts (int): draws before the last one is kept as it is.
    """

    def __init__(self, min_overlap: float = 0.0,
                 max_attempts: int = 10) -> None:
        if not 0.0 <= min_overlap <= 1.0:
            raise ValueError(f'min_overlap must be in [0, 1], got {min_overlap}')
        self.min_overlap = float(min_overlap)
        self.max_attempts = max(1, int(max_attempts))

    def redraw(self, draw, boxes_of):
        """``draw()`` repeated until ``overlap_fraction(boxes_of(drawn)) >=
        min_overlap`` (boxes (V, 4) x0, y0, x1, y1 in original pixels) or
        ``max_attempts`` draws; returns the last draw."""
        for _ in range(self.max_attempts):
            drawn = draw()
            if (self.min_overlap <= 0 or
                    overlap_fraction(boxes_of(drawn)) >= self.min_overlap):
                break
        return drawn


def compose_geometry(results: dict, matrix: np.ndarray) -> None:
    """Record that the image of ``results`` went through ``matrix`` (3, 3)
    (called by each geometry-tracking transform after it changed the image).
    """
    prev = results.get('view_matrix')
    results['view_matrix'] = matrix if prev is None else matrix @ prev
    results['view_shape'] = tuple(results['img'].shape[:2])


# --------------------------------------------------------------------------
# geometry-tracking transforms
# --------------------------------------------------------------------------
@TRANSFORMS.register_module()
class RandomResizedCrop(_MMPretrainRandomResizedCrop):
    """mmpretrain's ``RandomResizedCrop`` that also records the crop.

    **Added keys**: ``crop_bbox`` (x0, y0, x1, y1 of the crop in the input
    image, pixels), and the composed ``view_matrix`` / ``view_shape``.
    """

    def rand_crop_params(self, img: np.ndarray):
        params = super().rand_crop_params(img)
        self._last_crop = params  # (top, left, h, w) of this call's crop
        return params

    def transform(self, results: dict) -> dict:
        results = super().transform(results)
        top, left, ch, cw = self._last_crop
        out_h, out_w = results['img'].shape[:2]
        sx, sy = out_w / cw, out_h / ch
        results['crop_bbox'] = np.array([left, top, left + cw, top + ch],
                                        dtype=np.float64)
        compose_geometry(results, np.array([[sx, 0., -left * sx],
                                            [0., sy, -top * sy],
                                            [0., 0., 1.]]))
        return results


@TRANSFORMS.register_module()
class RandomFlip(_MMCVRandomFlip):
    """mmcv's ``RandomFlip`` that also composes the flip into
    ``view_matrix`` (horizontal, vertical and diagonal)."""

    def _flip(self, results: dict) -> None:
        super()._flip(results)
        h, w = results['img'].shape[:2]
        direction = results['flip_direction']
        fx = direction in ('horizontal', 'diagonal')
        fy = direction in ('vertical', 'diagonal')
        compose_geometry(results, np.array([
            [-1. if fx else 1., 0., w if fx else 0.],
            [0., -1. if fy else 1., h if fy else 0.],
            [0., 0., 1.]]))


# --------------------------------------------------------------------------
# the multi-view transform
# --------------------------------------------------------------------------
@TRANSFORMS.register_module()
class GeometricMultiView(OverlapRedraw, BaseTransform):
    """Several views of one image, each with its :class:`ViewGeometry`.

    Like mmpretrain's ``MultiView`` (``num_views`` and ``transforms`` mean
    the same), plus **added key** ``view_geometry``: a list with one
    :class:`ViewGeometry` per view (a per-view ``mask`` made inside a view
    pipeline is moved into it).

    Geometric transforms inside a view pipeline must record what they do
    (``RandomResizedCrop`` and ``RandomFlip`` in the mmmask scope do);
    one that changes the image size without recording it is an error, not
    silently wrong geometry.

    Args:
        transforms (list[list[dict]]): one pipeline per group of views.
        num_views (int | list[int]): views per pipeline.
        min_overlap (float): redraw the views (up to ``max_attempts`` times)
            until all views' crops overlap by at least this fraction of the
            smallest crop's area; 0 (default) accepts any draw.
        max_attempts (int): draws before the last one is kept as it is.
    """

    def __init__(self, transforms: List[List[Union[dict, callable]]],
                 num_views: Union[int, Sequence[int]],
                 min_overlap: float = 0.0, max_attempts: int = 10) -> None:
        self.num_views = views_per_group('GeometricMultiView', num_views,
                                         len(transforms), 'pipeline')
        OverlapRedraw.__init__(self, min_overlap, max_attempts)
        pipelines = [Compose([TRANSFORMS.build(t) if isinstance(t, dict)
                              else t for t in group]) for group in transforms]
        self.pipelines = [p for p, n in zip(pipelines, self.num_views)
                          for _ in range(n)]

    def _one_view(self, results: dict, pipeline: Compose):
        view = copy.deepcopy(results)
        h, w = view['img'].shape[:2]
        view['view_matrix'] = np.eye(3)
        view['view_shape'] = (h, w)
        view = pipeline(view)
        if view is None:
            raise RuntimeError('a view pipeline of GeometricMultiView '
                               'returned None')
        if tuple(view['img'].shape[:2]) != tuple(view['view_shape']):
            raise RuntimeError(
                'GeometricMultiView: a transform in the view pipeline changed '
                f'the image size to {view["img"].shape[:2]} without recording '
                f'its geometry (recorded size {view["view_shape"]}); use '
                'geometry-tracking transforms (RandomResizedCrop, RandomFlip '
                'of the mmmask scope)')
        geom = ViewGeometry(matrix=view['view_matrix'], ori_shape=(h, w),
                            view_shape=tuple(view['view_shape']),
                            mask=view.get('mask'))
        return view['img'], geom

    def _overlap_fraction(self, geoms: List[ViewGeometry]) -> float:
        return overlap_fraction([g.crop_box for g in geoms])

    def transform(self, results: dict) -> dict:
        views = self.redraw(
            lambda: [self._one_view(results, p) for p in self.pipelines],
            lambda drawn: [g.crop_box for _, g in drawn])
        results['img'] = [img for img, _ in views]
        results['view_geometry'] = [g for _, g in views]
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(num_views={self.num_views}, '
                f'min_overlap={self.min_overlap}, '
                f'pipelines={self.pipelines})')
