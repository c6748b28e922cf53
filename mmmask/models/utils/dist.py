"""Cross-rank helpers for momentum-contrast methods (work in one process too)."""
from typing import Tuple

import torch
from mmengine.dist import all_gather, broadcast, get_rank, get_world_size

from .step_random import StepRandom

# the permutation of shuffle BN: rank 0's draw of this stream, broadcast
_SHUFFLE_RANDOM = StepRandom('shuffle_bn')


@torch.no_grad()
def gather_all(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` of every rank along dim 0, rank order.

    Args:
        x: (N, ...) on this rank.
    Returns:
        (world_size * N, ...); ``x`` itself when not distributed.
    """
    if get_world_size() == 1:
        return x
    return torch.cat(all_gather(x.contiguous()), dim=0)


@torch.no_grad()
def batch_shuffle(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Shuffle BN (MoCo, Sec. 3.3): permute the global batch across ranks.

    The permutation is rank 0's draw of the :class:`StepRandom` stream
    ``'shuffle_bn'`` (the same after a resume; the global torch RNG is left
    alone).

    Args:
        x: (N, ...) on this rank.
    Returns:
        (the N samples this rank now holds, the global permutation's inverse).
        Not distributed: ``x`` unchanged and an empty index.
    """
    world = get_world_size()
    if world == 1:
        return x, x.new_empty(0, dtype=torch.long)
    x_all = gather_all(x)
    perm = torch.randperm(x_all.shape[0],
                          generator=_SHUFFLE_RANDOM.torch()).to(x.device)
    broadcast(perm, src=0)  # every rank uses rank 0's permutation
    mine = perm.view(world, -1)[get_rank()]
    return x_all[mine], torch.argsort(perm)


@torch.no_grad()
def batch_unshuffle(x: torch.Tensor, inverse: torch.Tensor) -> torch.Tensor:
    """Undo :func:`batch_shuffle` for ``x`` (N, ...) computed on the shuffled
    samples; returns this rank's original samples' rows."""
    world = get_world_size()
    if world == 1:
        return x
    return gather_all(x)[inverse.view(world, -1)[get_rank()]]
