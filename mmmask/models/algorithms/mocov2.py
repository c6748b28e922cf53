"""MoCo v2: `Improved Baselines with Momentum Contrastive Learning
<https://arxiv.org/abs/2003.04297>`_."""
from typing import Dict, List

import torch
import torch.nn.functional as F

from mmmask.registry import MODELS
from ..utils import FeatureQueue
from .base import BaseMomentumContrast


@MODELS.register_module()
class MoCoV2(BaseMomentumContrast):
    """MoCo v2.

    q = normalize(neck(backbone(x_q))), k = normalize(key_neck(key_backbone(
    x_k))) with the EMA key encoder; ``loss_global`` = InfoNCE(q, k, queue)
    (MoCo Eq. 1, tau in the head); then the keys of all ranks are enqueued.

    Args:
        backbone, neck, head (dict): configs; the neck returns ``((N, C),)``.
        queue_len (int): K, keys in the queue (65536).
        feat_dim (int): C, the neck's output size (128).
        momentum (float): m (0.999).
        key_bn (str): ``'shuffle'`` | ``'sync'`` | ``'none'``.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 queue_len: int = 65536, feat_dim: int = 128,
                 momentum: float = 0.999, key_bn: str = 'shuffle',
                 data_preprocessor=None, init_cfg=None) -> None:
        super().__init__(backbone, neck, head, momentum, key_bn,
                         data_preprocessor, init_cfg)
        self.queue = FeatureQueue(queue_len, feat_dim)

    def loss(self, inputs: List[torch.Tensor],
             data_samples=None) -> Dict[str, torch.Tensor]:
        """inputs: two views, each (N, 3, H, W)."""
        im_q, im_k = self.split_views(inputs)
        q = F.normalize(self.neck(self.backbone(im_q))[0], dim=1)  # (N, C)
        _, (k, ) = self.encode_keys(im_k)
        k = F.normalize(k, dim=1)  # (N, C)
        loss = self.head.loss(q, k, self.queue.negatives())
        self.queue.enqueue(k)
        return dict(loss_global=loss)
