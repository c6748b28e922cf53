"""MaskCo: `Self-Supervised Visual Representations Learning by Contrastive
Mask Prediction <https://arxiv.org/abs/2108.07954>`_ (Zhao et al., ICCV
2021). No public code: the open choices are arguments (docs/methods.md section 4).
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from mmmask.registry import MODELS
from ..mask_generators import build_fill
from ..utils import FeatureQueue, StepRandom
from ..utils.roi_align import roi_align
from .base import BaseMomentumContrast


def region_features(feat: torch.Tensor, boxes: torch.Tensor,
                    image_size: int, output_size: int = 7,
                    sampling_ratio: int = 2,
                    aligned: bool = True) -> torch.Tensor:
    """RoIAlign of one box (or K boxes) per image (equal to torchvision's /
    mmcv's RoIAlign; two batched matmuls, see ``models/utils/roi_align``).

    Args:
        feat: (N, C, h, w) feature map of images of side ``image_size``.
        boxes: (N, 4) or (N, K, 4) boxes in image pixels (x0, y0, x1, y1).
    Returns:
        (N * K, C, output_size, output_size), rows image-major.
    """
    n = feat.shape[0]
    boxes = boxes.to(feat.dtype).reshape(n, -1, 4)
    k = boxes.shape[1]
    idx = torch.arange(n, device=feat.device, dtype=feat.dtype)
    rois = torch.cat([idx.repeat_interleave(k)[:, None],
                      boxes.reshape(-1, 4)], dim=1)  # (N K, 5)
    return roi_align(feat, rois, output_size, feat.shape[-1] / image_size,
                     sampling_ratio, aligned)


@MODELS.register_module()
class MaskCo(BaseMomentumContrast):
    """MaskCo: region-level contrast between a masked and an intact view.

    Per image, the pipeline (``GeometricMultiView`` + ``SampleOverlapRegion``)
    gives two views, a region in their overlap in both views' pixels
    (``data_sample.regions`` (2, 4)) and its mask in the query view
    (``data_sample.mask`` (H, W)).

    * query: fill the region (``mask_fill``, default the dataset mean, i.e.
      0 after normalisation) -> backbone C5 -> mask prediction head (MPH)
      -> RoIAlign(region) -> MLP neck -> q (N, C), L2-normalised;
    * key: momentum backbone on the intact view -> RoIAlign(same region,
      key view's coordinates) -> momentum neck -> k (N, C);
    * ``loss_region`` = InfoNCE(q, k; queue of keys from all ranks, plus
      optionally the keys of ``num_neg_regions`` other regions of the same
      key view, from ``data_sample.neg_regions``), tau in the head.

    Samples whose views did not overlap (``region_valid`` False) are left
    out of the loss and out of the queue (their region, and so their key,
    carries no content of the image); each rank's validity mask travels
    with its keys (:meth:`FeatureQueue.enqueue`).

    Args:
        backbone, neck, head (dict): configs (neck: MoCo v2 MLP on the RoI
            map; head: ``InfoNCEHead`` with tau 0.2).
        mask_head (dict): the MPH config (``MaskPredictionHead``).
        mask_fill (dict): a fill from ``MASK_GENERATORS``
            (``MeanFill(mode='dataset')``).
        roi_size (int): RoIAlign output side (7).
        roi_sampling_ratio (int): RoIAlign sampling points per bin (2).
        use_same_image_negatives (bool): add the ``neg_regions`` keys as
            extra negatives (False).
        queue_len, feat_dim, momentum, key_bn: as in MoCo v2 (65536, 128,
            0.999, 'shuffle').
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 mask_head: dict = dict(type='MaskPredictionHead'),
                 mask_fill: dict = dict(type='MeanFill', mode='dataset'),
                 roi_size: int = 7, roi_sampling_ratio: int = 2,
                 use_same_image_negatives: bool = False,
                 queue_len: int = 65536, feat_dim: int = 128,
                 momentum: float = 0.999, key_bn: str = 'shuffle',
                 data_preprocessor=None, init_cfg=None) -> None:
        super().__init__(backbone, neck, head, momentum, key_bn,
                         data_preprocessor, init_cfg)
        self.mask_head = MODELS.build(mask_head)
        self.mask_fill = build_fill(mask_fill)
        self.fill_random = StepRandom('maskco_fill')  # per rank, iteration
        self.roi_size = roi_size
        self.roi_sampling_ratio = roi_sampling_ratio
        self.use_same_image_negatives = use_same_image_negatives
        self.queue = FeatureQueue(queue_len, feat_dim)

    def _rois(self, feat: torch.Tensor, boxes: torch.Tensor,
              image_size: int) -> torch.Tensor:
        return region_features(feat, boxes, image_size, self.roi_size,
                               self.roi_sampling_ratio)

    @staticmethod
    def _stack(data_samples, key: str, device) -> torch.Tensor:
        if data_samples is None or not all(key in ds for ds in data_samples):
            raise KeyError(f'MaskCo needs data_sample.{key}: use '
                           'GeometricMultiView + SampleOverlapRegion and pack '
                           f"'{key}' with PackInputs(algorithm_keys=[...])")
        return torch.stack([torch.as_tensor(ds.get(key)) for ds in
                            data_samples]).to(device)

    def query_features(self, im_q: torch.Tensor, q_boxes: torch.Tensor,
                       mask: Optional[torch.Tensor]) -> torch.Tensor:
        """(N, 3, H, W) view, (N, 4) boxes, (N, H, W) mask -> q (N, C)."""
        if mask is not None:
            im_q = self.mask_fill(im_q, mask[:, None],
                                  generator=self.fill_random.torch())
        feat = self.mask_head(self.backbone(im_q)[-1])
        q = self.neck([self._rois(feat, q_boxes, im_q.shape[-1])])[0]
        return F.normalize(q, dim=1)

    @torch.no_grad()
    def key_features(self, im_k: torch.Tensor,
                     boxes: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) view, (N, K, 4) boxes -> keys (N, K, C) (no EMA
        update here)."""
        feat = self.key_forward(im_k, with_neck=False)[0][-1]
        n = boxes.shape[0]
        k = boxes.reshape(n, -1, 4).shape[1]
        keys = self.key_encoder.neck([self._rois(feat, boxes,
                                                 im_k.shape[-1])])[0]
        return F.normalize(keys, dim=1).reshape(n, k, -1)

    def loss(self, inputs: List[torch.Tensor],
             data_samples=None) -> Dict[str, torch.Tensor]:
        """inputs: two views (N, 3, H, W); data samples with ``regions``,
        ``mask`` (and ``neg_regions``, ``region_valid``)."""
        im_q, im_k = self.split_views(inputs)
        device = im_q.device
        regions = self._stack(data_samples, 'regions', device)  # (N, 2, 4)
        mask = self._stack(data_samples, 'mask', device).bool()  # (N, H, W)
        valid = torch.tensor([bool(ds.get('region_valid', True))
                              for ds in data_samples], device=device)

        q = self.query_features(im_q, regions[:, 0], mask)  # (N, C)
        self.key_encoder.update(dict(backbone=self.backbone, neck=self.neck))
        boxes_k = regions[:, 1:2]  # (N, 1, 4)
        if self.use_same_image_negatives:
            neg = self._stack(data_samples, 'neg_regions', device)
            boxes_k = torch.cat([boxes_k, neg], dim=1)  # (N, 1 + K, 4)
        keys = self.key_features(im_k, boxes_k)  # (N, 1 + K, C)
        k = keys[:, 0]

        extra = None
        if keys.shape[1] > 1:  # same-image negatives: (N, K) cosines
            extra = torch.einsum('nc,nkc->nk', q, keys[:, 1:])
        if bool(valid.all()):
            loss = self.head.loss(q, k, self.queue.negatives(), extra)
        elif bool(valid.any()):
            loss = self.head.loss(q[valid], k[valid], self.queue.negatives(),
                                  None if extra is None else extra[valid])
        else:  # no overlap anywhere in the batch: nothing to contrast
            loss = q.sum() * 0
        self.queue.enqueue(k, valid)
        return dict(loss_region=loss)
