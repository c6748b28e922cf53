"""InfoNCE as a pure function (no trainer, no module state)."""
from typing import Optional

import torch


def info_nce(query: torch.Tensor,
             positive: torch.Tensor,
             negatives: torch.Tensor,
             temperature: float,
             extra_neg_logits: Optional[torch.Tensor] = None) -> torch.Tensor:
    """InfoNCE with one positive per query and a shared negative bank.

    ``L = mean_i [ -log exp(q_i.k+_i / t) / (exp(q_i.k+_i / t)
    + sum_j exp(q_i.n_j / t)) ]`` (MoCo, Eq. 1), computed as
    ``logaddexp(l_pos, logsumexp(l_neg)) - l_pos`` so the (M, 1 + K) logits
    are never concatenated.

    Args:
        query: (M, C), L2-normalised.
        positive: (M, C), L2-normalised, the positive key of each query.
        negatives: (K, C), L2-normalised negatives shared by all queries
            (the queue).
        temperature: t.
        extra_neg_logits: optional (M, E) logits already divided by t, added
            as further negatives (e.g. a hard negative per query).
    Returns:
        scalar loss.
    """
    l_pos = torch.einsum('mc,mc->m', query, positive) / temperature  # (M,)
    l_neg = torch.mm(query, negatives.t()) / temperature  # (M, K)
    lse_neg = torch.logsumexp(l_neg, dim=1)  # (M,)
    if extra_neg_logits is not None:
        lse_neg = torch.logaddexp(lse_neg, torch.logsumexp(extra_neg_logits, 1))
    return (torch.logaddexp(l_pos, lse_neg) - l_pos).mean()
