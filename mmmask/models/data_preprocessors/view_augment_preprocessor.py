"""The device half of the split view pipeline: a data preprocessor that
augments the cropped uint8 views as tensor ops over the batch."""
import dataclasses
from typing import List, Optional, Sequence, Union

import numpy as np
import torch
from mmpretrain.models.utils import SelfSupDataPreprocessor
from torch import Tensor

from mmmask.registry import BATCH_AUGMENTS, MODELS
from ..utils.step_random import StepRandom
from .batch_augments import BatchViewAugment

__all__ = ['ViewAugmentDataPreprocessor', 'flip_geometry']


def _hflip_matrix(width: int) -> np.ndarray:
    """(3, 3) map of a left-right flip of a view ``width`` pixels wide:
    ``x -> width - x`` (continuous pixel coordinates)."""
    return np.array([[-1., 0., float(width)], [0., 1., 0.], [0., 0., 1.]])


def _flip_boxes(boxes, width: int):
    """Boxes (..., 4) (x0, y0, x1, y1) mirrored in a view ``width`` wide:
    ``(W - x1, y0, W - x0, y1)``; numpy or torch in, same type out."""
    if isinstance(boxes, Tensor):
        out = boxes.clone()
    else:
        out = np.array(boxes, copy=True)
    out[..., 0] = width - boxes[..., 2]
    out[..., 2] = width - boxes[..., 0]
    return out


def _flip_last(x):
    """A mask (..., H, W) mirrored along W (numpy or torch)."""
    if isinstance(x, Tensor):
        return x.flip(-1)
    return np.ascontiguousarray(np.asarray(x)[..., ::-1])


def flip_geometry(sample, view: int, width: int, mask_view: Optional[int],
                  neg_regions_view: Optional[int]) -> None:
    """Record on one data sample that ``view`` was flipped left-right.

    * ``view_geometry[view]``: the flip composed into its ``matrix``
      (original -> view) and its ``mask`` mirrored;
    * ``regions`` (V, 4): the boxes of that view mirrored;
    * ``mask`` (H, W): mirrored when ``view == mask_view``;
    * ``neg_regions`` (K, 4): mirrored when ``view == neg_regions_view``.
    """
    if 'view_geometry' in sample:
        geoms = list(sample.view_geometry)
        g = geoms[view]
        geoms[view] = dataclasses.replace(
            g, matrix=_hflip_matrix(width) @ np.asarray(g.matrix),
            mask=None if g.mask is None else _flip_last(g.mask))
        sample.set_field(geoms, 'view_geometry')
    if 'regions' in sample:
        regions = sample.regions
        flipped = _flip_boxes(regions[view], width)
        regions = regions.clone() if isinstance(regions, Tensor) else \
            np.array(regions, copy=True)
        regions[view] = flipped
        sample.set_field(regions, 'regions')
    if view == mask_view and 'mask' in sample:
        sample.set_field(_flip_last(sample.mask), 'mask')
    if view == neg_regions_view and 'neg_regions' in sample:
        sample.set_field(_flip_boxes(sample.neg_regions, width),
                         'neg_regions')


@MODELS.register_module()
class ViewAugmentDataPreprocessor(SelfSupDataPreprocessor):
    """mmpretrain's ``SelfSupDataPreprocessor`` that also augments the views.

    The data pipeline only decodes and crops (uint8 views of the final size,
    with their geometry records); this preprocessor runs the rest of the
    view augmentation on the model's device, batched. Order:

    uint8 views -> float32 on the device -> RGB -> ``view_augments`` (in
    training only) -> output channel order -> ``(x - mean) / std``.

    All random parameters come from ``StepRandom('view_augment')`` (per run
    seed, rank and iteration; nothing to store for an exact resume), drawn
    on the CPU and moved to the device.

    Args:
        mean, std, to_rgb: as ``SelfSupDataPreprocessor`` (``to_rgb`` swaps
            the channels of the loaded views; ``mean`` / ``std`` are in the
            output order).
        input_order (str): channel order of the loaded uint8 views,
            ``'bgr'`` (mmcv's loading) or ``'rgb'`` (e.g. CIFAR arrays).
        view_augments (list): batched op configs (``BATCH_AUGMENTS``): one
            list applied to every view, or a list of lists, one per view
            (``[]`` leaves a view as it is).
        mask_view (int | None): the view ``data_sample.mask`` lies in
            (MaskCo's query view, 0); None: never flip it.
        neg_regions_view (int | None): the view of ``neg_regions`` (MaskCo's
            key view, 1).
        cpu_chunk (int | None): on the CPU, augment this many samples at a
            time (same parameters and results, less memory traffic); None
            (default): as many as hold ``CPU_CHUNK_PIXELS`` pixels per view,
            at least one (2 views of 224 px, 128 of 32 px).
        compile (bool): run the ops' ``torch.compile`` d kernels (the hue
            and the blur's passes fused into one loop each; the same values,
            tested). Off by
            default: the first batch of each shape waits for the compiler
            (seconds to minutes; on the CPU it needs a C++ compiler).

    ``CPU_CHUNK_PIXELS``: pixels per view in a CPU sub-batch, the size
    that was fastest for 32 to 224 px views (docs/benchmarks.md).

    The call interface is mmengine's:
    ``preprocessor(dict(inputs=[uint8 (N, 3, H, W) per view],
    data_samples=[...]), training=True)``.
    """

    CPU_CHUNK_PIXELS = 2**17

    def __init__(self, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None,
                 to_rgb: bool = False, input_order: str = 'bgr',
                 view_augments: Union[List[dict], List[List[dict]]] = (),
                 mask_view: Optional[int] = 0,
                 neg_regions_view: Optional[int] = 1,
                 cpu_chunk: Optional[int] = None,
                 compile: bool = False, **kwargs) -> None:
        super().__init__(mean=mean, std=std, to_rgb=to_rgb, **kwargs)
        if input_order not in ('bgr', 'rgb'):
            raise ValueError("ViewAugmentDataPreprocessor: input_order must "
                             f"be 'bgr' or 'rgb', got {input_order!r}")
        self.input_order = input_order
        self.to_rgb = bool(to_rgb)
        view_augments = list(view_augments or [])
        self.per_view = bool(view_augments) and all(
            isinstance(v, (list, tuple)) for v in view_augments)
        if not self.per_view and any(
                isinstance(v, (list, tuple)) for v in view_augments):
            raise ValueError('ViewAugmentDataPreprocessor: view_augments must '
                             'be a list of op configs or a list of lists (one '
                             'per view), not a mix')
        groups = view_augments if self.per_view else [view_augments]
        self.view_augments = [[self._build(c) for c in g] for g in groups]
        self.compile = bool(compile)
        for op in (op for g in self.view_augments for op in g):
            op.compile = self.compile
        self.mask_view = mask_view
        self.neg_regions_view = neg_regions_view
        self.cpu_chunk = None if cpu_chunk is None else int(cpu_chunk)
        self._random = StepRandom('view_augment')

    @staticmethod
    def _build(cfg) -> BatchViewAugment:
        op = BATCH_AUGMENTS.build(cfg) if isinstance(cfg, dict) else cfg
        if not isinstance(op, BatchViewAugment):
            raise TypeError(f'ViewAugmentDataPreprocessor: {cfg} is not a '
                            'batched view augmentation (BatchColorJitter, '
                            'BatchRandomGrayscale, BatchGaussianBlur, '
                            'BatchSolarize, BatchRandomFlip, ...)')
        return op

    def _ops_of(self, view: int, num_views: int) -> List[BatchViewAugment]:
        if not self.per_view:
            return self.view_augments[0]
        if len(self.view_augments) != num_views:
            raise ValueError(
                f'ViewAugmentDataPreprocessor: {len(self.view_augments)} '
                f'per-view augmentation lists for {num_views} views')
        return self.view_augments[view]

    def _draw(self, views: List[Tensor]):
        """Every op's parameters for the whole batch, view by view and op
        by op, from one CPU generator (``StepRandom('view_augment')``):
        per view a list of (op, CPU params, ``op.params_to`` the device)."""
        opss = [self._ops_of(v, len(views)) for v in range(len(views))]
        if not any(opss):
            return [[] for _ in views]
        gen = self._random.torch()
        drawn = []
        for v, img in enumerate(views):
            params = [op.sample_params(img.shape[0], gen) for op in opss[v]]
            drawn.append([(op, p, op.params_to(p, img.device))
                          for op, p in zip(opss[v], params)])
        return drawn

    def _flip_records(self, drawn, views, data_samples) -> None:
        """Compose the drawn flips into the samples' geometry records."""
        if data_samples is None:
            return
        for v, ops in enumerate(drawn):
            for op, p, _ in ops:
                if op.flips:
                    for i in torch.nonzero(p['flip']).flatten().tolist():
                        flip_geometry(data_samples[i], v, views[v].shape[-1],
                                      self.mask_view, self.neg_regions_view)

    def sub_batch(self, img: Tensor) -> int:
        """Samples per sub-batch of the views ``img`` (N, 3, H, W):
        ``cpu_chunk`` (or the ``CPU_CHUNK_PIXELS`` rule) on the CPU, the
        whole batch elsewhere."""
        if img.device.type != 'cpu':
            return img.shape[0]
        pixels = img.shape[-2] * img.shape[-1]
        return max(1, self.cpu_chunk or self.CPU_CHUNK_PIXELS // pixels)

    def _spans(self, img: Tensor):
        """(start, size) of each sub-batch (:meth:`sub_batch`)."""
        n, step = img.shape[0], self.sub_batch(img)
        return [(s, min(step, n - s)) for s in range(0, n, step)]

    @staticmethod
    def _augment_part(part: Tensor, ops, start: int, size: int) -> Tensor:
        for op, _, dev in ops:
            part = op.apply(part, {k: t[start:start + size]
                                   for k, t in dev.items()})
        return part

    def forward(self, data: dict, training: bool = False) -> dict:
        """uint8 views (N, 3, H, W) -> normalised float32 views.

        Per view and per sub-batch (``cpu_chunk`` samples on the CPU: the
        sub-batch stays in the cache from the conversion to the
        normalisation), the samples are converted to float32 RGB, augmented
        (``training`` only) and written normalised, ``(x_c - mean_c) /
        std_c`` in the output channel order, into the output tensor."""
        if not isinstance(data, dict):
            raise TypeError('ViewAugmentDataPreprocessor needs a dict batch '
                            f'(default_collate), got {type(data).__name__}')
        data = self.cast_data(data)
        inputs = data['inputs']
        data_samples = data.get('data_samples')
        single = isinstance(inputs, Tensor)
        views = [inputs] if single else list(inputs)
        for v in views:
            if v.dim() != 4 or v.shape[1] != 3:
                raise ValueError('ViewAugmentDataPreprocessor: every view '
                                 'must be (N, 3, H, W), got '
                                 f'{tuple(v.shape)}')
        drawn = self._draw(views) if training else [[] for _ in views]
        # the ops work on RGB; output: the input order, swapped when to_rgb
        to_ops = [2, 1, 0] if self.input_order == 'bgr' else [0, 1, 2]
        out_rgb = (self.input_order == 'rgb') != self.to_rgb
        from_ops = [0, 1, 2] if out_rgb else [2, 1, 0]
        if self._enable_normalize:  # mean / std in the ops' channel order
            order = [from_ops.index(c) for c in range(3)]
            mean = self.mean[order].view(1, 3, 1, 1)
            std = self.std[order].view(1, 3, 1, 1)
        outs = []
        for img, ops in zip(views, drawn):
            out = torch.empty(img.shape, dtype=torch.float32,
                              device=img.device)
            for s, m in self._spans(img):
                part = torch.empty((m, *img.shape[1:]), dtype=torch.float32,
                                   device=img.device)
                for c, src in enumerate(to_ops):
                    part[:, c].copy_(img[s:s + m, src])
                part = self._augment_part(part, ops, s, m)
                if self._enable_normalize:  # in the cache, then one write
                    part.sub_(mean).div_(std)
                for c, src in enumerate(from_ops):
                    out[s:s + m, c].copy_(part[:, src])
            outs.append(out)
        self._flip_records(drawn, views, data_samples)
        views = outs
        return {'inputs': views[0] if single else views,
                'data_samples': data_samples}
