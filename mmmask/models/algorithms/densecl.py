"""DenseCL: `Dense Contrastive Learning for Self-Supervised Visual
Pre-Training <https://arxiv.org/abs/2011.09157>`_."""
from typing import Dict, List

import torch
import torch.nn.functional as F

from mmmask.registry import MODELS
from ..utils import FeatureQueue
from .base import BaseMomentumContrast


def dense_correspondence(q_feat: torch.Tensor, k_feat: torch.Tensor
                         ) -> torch.Tensor:
    """For each query location, the key location of highest cosine
    similarity between **backbone** features (DenseCL Sec. 3.3).

    Args:
        q_feat: (N, C, Sq) query backbone features (any scale).
        k_feat: (N, C, Sk) key backbone features.
    Returns:
        (N, Sq) long: argmax_j cos(q_i, k_j), by one batched matmul.
    """
    q = F.normalize(q_feat, dim=1)
    k = F.normalize(k_feat, dim=1)
    return torch.bmm(q.transpose(1, 2), k).argmax(dim=2)


@MODELS.register_module()
class DenseCL(BaseMomentumContrast):
    """DenseCL.

    Global branch = MoCo v2. Dense branch: the neck's S x S head outputs
    r (query) and t (key); each query location's positive is the key output
    at the location whose C5 backbone feature is most similar
    (:func:`dense_correspondence`); negatives are the second queue of
    average-pooled dense keys (one vector per other image).

    ``L = (1 - lambda) L_global + lambda L_dense`` (DenseCL Eq. 3), tau on
    every logit, L_dense averaged over the S^2 locations of all images.
    ``loss_lambda`` is an attribute so that a warm-up hook can change it.

    Args:
        backbone, neck, head (dict): configs; the neck returns
            ``(global (N, C), dense (N, C, S^2), dense_pooled (N, C))`` and
            its ``to_grid(map)`` puts a backbone map on the dense output's
            S x S grid (``DenseProjectionNeck``).
        queue_len (int): K of each queue (65536).
        feat_dim (int): C (128).
        momentum (float): m (0.999).
        loss_lambda (float): lambda (0.5).
        key_bn (str): ``'shuffle'`` | ``'sync'`` | ``'none'``.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 queue_len: int = 65536, feat_dim: int = 128,
                 momentum: float = 0.999, loss_lambda: float = 0.5,
                 key_bn: str = 'shuffle', data_preprocessor=None,
                 init_cfg=None) -> None:
        super().__init__(backbone, neck, head, momentum, key_bn,
                         data_preprocessor, init_cfg)
        if not 0.0 <= loss_lambda <= 1.0:
            raise ValueError(f'loss_lambda must be in [0, 1], got {loss_lambda}')
        if not callable(getattr(self.neck, 'to_grid', None)):
            raise TypeError(f'DenseCL needs a neck with to_grid(map) (the '
                            f'dense grid it matches on, e.g. '
                            f'DenseProjectionNeck); {type(self.neck).__name__}'
                            ' has none')
        self.loss_lambda = loss_lambda
        self.queue = FeatureQueue(queue_len, feat_dim)  # global keys
        self.dense_queue = FeatureQueue(queue_len, feat_dim)  # pooled dense keys

    def loss(self, inputs: List[torch.Tensor],
             data_samples=None) -> Dict[str, torch.Tensor]:
        """inputs: two views, each (N, 3, H, W)."""
        im_q, im_k = self.split_views(inputs)
        q_feats = self.backbone(im_q)
        q, q_dense, _ = self.neck(q_feats)  # (N, C), (N, C, S^2)
        q = F.normalize(q, dim=1)
        q_dense = F.normalize(q_dense, dim=1)

        k_feats, (k, k_dense, k_pooled) = self.encode_keys(im_k)
        k = F.normalize(k, dim=1)
        k_dense = F.normalize(k_dense, dim=1)  # (N, C, S^2)
        k_pooled = F.normalize(k_pooled, dim=1)  # (N, C)

        # Positive of query location i: key output at argmax_j cos(f_i, f_j)
        # of the C5 backbone features f (no gradient flows through the match),
        # on the grid of the neck's dense outputs (the neck says which).
        with torch.no_grad():
            f_q = self.neck.to_grid(q_feats[-1])  # (N, C5, S, S)
            f_k = self.neck.to_grid(k_feats[-1])
            match = dense_correspondence(f_q.flatten(2),
                                         f_k.flatten(2))  # (N, S^2)
            k_pos = torch.gather(
                k_dense, 2, match.unsqueeze(1).expand(-1, k_dense.shape[1], -1))
        c = q_dense.shape[1]
        q_rows = q_dense.transpose(1, 2).reshape(-1, c)  # (N S^2, C)
        k_rows = k_pos.transpose(1, 2).reshape(-1, c)  # (N S^2, C)

        lam = self.loss_lambda
        loss_global = self.head.loss(q, k, self.queue.negatives())
        loss_dense = self.head.loss(q_rows, k_rows,
                                     self.dense_queue.negatives())
        self.queue.enqueue(k)
        self.dense_queue.enqueue(k_pooled)
        return dict(loss_global=loss_global * (1 - lam),
                    loss_dense=loss_dense * lam)
