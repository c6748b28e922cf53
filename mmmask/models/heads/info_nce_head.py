"""Contrastive heads."""
from typing import Optional

import torch
from mmengine.model import BaseModule

from mmmask.registry import MODELS
from ..losses import info_nce


@MODELS.register_module()
class InfoNCEHead(BaseModule):
    """InfoNCE against a bank of negatives (MoCo, Eq. 1).

    Args:
        temperature (float): tau (0.2 for MoCo v2 and DenseCL).
    """

    def __init__(self, temperature: float = 0.2, init_cfg=None) -> None:
        super().__init__(init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = temperature

    def loss(self, query: torch.Tensor, positive: torch.Tensor,
             negatives: torch.Tensor,
             extra_neg_sims: Optional[torch.Tensor] = None) -> torch.Tensor:
        """query, positive: (M, C); negatives: (K, C); all L2-normalised.
        ``extra_neg_sims``: optional (M, E) similarities of further
        negatives per query (cosines, possibly scaled, e.g. the saliency
        method's ``alpha * q . k_hn``); the head divides them by its tau
        like every other logit. Returns the scalar loss."""
        extra = (None if extra_neg_sims is None else
                 extra_neg_sims / self.temperature)  # logits: sims / tau
        return info_nce(query, positive, negatives, self.temperature, extra)
