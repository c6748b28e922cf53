"""InfoNCE with hard negatives up-weighted: Robinson et al., `Contrastive
Learning with Hard Negative Samples <https://arxiv.org/abs/2010.04592>`_
(ICLR 2021), the importance-weighted estimator without the debiasing term
(tau_plus = 0).

Registered into **mmmask's** MODELS registry from outside the mmmask package;
a config reaches it through ``custom_imports`` only.
"""
import math

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule

from mmmask.registry import MODELS


def hard_negative_info_nce(query: torch.Tensor, positive: torch.Tensor,
                           negatives: torch.Tensor, temperature: float,
                           beta: float) -> torch.Tensor:
    """InfoNCE whose negative term is an importance-weighted mean.

    With logits ``l_pos = q.k+ / t`` and ``l_j = q.n_j / t`` (j = 1..K), the
    negatives' sum ``sum_j exp(l_j)`` becomes ``sum_j w_j exp(l_j)`` with
    ``w_j = K softmax_j(beta * l)`` (weights average to 1; gradients flow
    through them, as in the authors' estimator). So

    ``L = mean_i [ logsumexp([l_pos, l_j + log w_j]) - l_pos ]``.

    ``beta = 0`` gives every negative weight 1: plain InfoNCE (MoCo Eq. 1).
    A larger ``beta`` concentrates the weight on the negatives most similar
    to the query.

    Args:
        query: (M, C), L2-normalised.
        positive: (M, C), L2-normalised.
        negatives: (K, C), L2-normalised, shared by all queries (a queue).
        temperature: t > 0.
        beta: concentration, >= 0.
    Returns:
        scalar loss (mean over the M queries), float32 or wider.
    """
    acc = torch.promote_types(query.dtype, torch.float32)
    l_pos = torch.einsum('mc,mc->m', query, positive).to(acc) / temperature
    l_neg = torch.mm(query, negatives.detach().t()).to(acc) / temperature
    log_w = math.log(l_neg.shape[1]) + F.log_softmax(beta * l_neg, dim=1)
    logits = torch.cat([l_pos[:, None], l_neg + log_w], dim=1)  # (M, 1 + K)
    return (torch.logsumexp(logits, dim=1) - l_pos).mean()


@MODELS.register_module()
class HardNegativeInfoNCEHead(BaseModule):
    """Drop-in replacement of mmmask's ``InfoNCEHead`` (same ``loss``
    signature) that up-weights hard negatives.

    Args:
        temperature (float): t (0.2 for MoCo v2).
        beta (float): concentration of the negative weights (the paper
            uses 0.1 to 2; 0 is plain InfoNCE). Defaults to 1.0.
    """

    def __init__(self, temperature: float = 0.2, beta: float = 1.0,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if beta < 0:
            raise ValueError(f'beta must be >= 0 (0 = plain InfoNCE), '
                             f'got {beta}')
        self.temperature = temperature
        self.beta = beta

    def loss(self, query: torch.Tensor, positive: torch.Tensor,
             negatives: torch.Tensor, extra_neg_sims=None) -> torch.Tensor:
        """query, positive: (M, C); negatives: (K, C); all L2-normalised.
        Returns the scalar loss."""
        if extra_neg_sims is not None:
            raise ValueError('HardNegativeInfoNCEHead takes no '
                             'extra_neg_sims (weights are defined over the '
                             'queue only)')
        return hard_negative_info_nce(query, positive, negatives,
                                      self.temperature, self.beta)
