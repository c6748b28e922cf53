"""InfoNCE against the keys of every rank (CMAE, SimCLR-style, no queue)."""
import torch
import torch.nn.functional as F
from mmengine.dist import get_rank

from ..utils import gather_all

__all__ = ['cross_rank_info_nce']


def cross_rank_info_nce(query: torch.Tensor, key: torch.Tensor,
                        temperature: float) -> torch.Tensor:
    """``L = mean_i -log softmax_j(q_i . k_j / t)[j = r N + i]`` with
    ``k_j`` the L2-normalised keys of all ranks (rank order, no gradient)
    and ``r`` this rank: each query's positive is the key of the same image,
    every other image of the global batch a negative (CMAE's contrastive
    loss).

    Args:
        query: (N, C), gradient flows; normalised here.
        key: (N, C) of this rank, detached; normalised here and gathered.
        temperature: t (CMAE: 0.07).
    Returns:
        scalar, float32 at least.
    """
    q = F.normalize(query.float(), dim=1)
    k_all = F.normalize(gather_all(key.detach()).float(), dim=1)  # (W N, C)
    logits = q @ k_all.t() / temperature  # (N, W N)
    n = q.shape[0]
    labels = torch.arange(n, device=q.device) + get_rank() * n
    return F.cross_entropy(logits, labels)
