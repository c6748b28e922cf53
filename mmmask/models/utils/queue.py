"""One feature queue for every momentum-contrast method."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dist import gather_all


class FeatureQueue(nn.Module):
    """A FIFO of L2-normalised key features (MoCo's dictionary), updated in
    place.

    Buffers (saved in checkpoints):
        feats: (length, dim), one key per row, initialised to random unit
            vectors.
        ptr: () long, the row the next key is written to.

    The queue is read by the loss of step t and written with step t's keys;
    autograd needs the values it read until step t's backward. So
    :meth:`enqueue` only gathers the keys (from all ranks) and holds them;
    they are written in place, without copying the queue, at the next
    :meth:`negatives` (step t + 1's forward) or before a ``state_dict`` /
    :meth:`flush`. What the loss sees is exactly MoCo's
    "enqueue after the step".

    Args:
        length (int): number of keys K (MoCo: 65536).
        dim (int): feature dimension C (MoCo: 128).
    """

    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        if length <= 0 or dim <= 0:
            raise ValueError(f'FeatureQueue needs length > 0 and dim > 0, '
                             f'got length={length}, dim={dim}')
        self.length, self.dim = length, dim
        self.register_buffer('feats', F.normalize(torch.randn(length, dim), dim=1))
        self.register_buffer('ptr', torch.zeros((), dtype=torch.long))
        self._pending: Optional[torch.Tensor] = None

    def negatives(self) -> torch.Tensor:
        """The queue (length, dim) with every enqueued key written."""
        self.flush()
        return self.feats

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor,
                valid: Optional[torch.Tensor] = None) -> None:
        """Gather ``keys`` (N, dim) from all ranks (rank order) and schedule
        them to overwrite the oldest rows (wrapping around the end).

        ``valid``: optional (N,) bool, the keys to keep (e.g. MaskCo's
        samples whose views overlap); the others are left out. Ranks may
        keep different numbers of keys: each rank's mask travels with its
        keys in the same gather, so every rank writes the same rows and the
        queues stay equal.
        """
        keys = keys.detach()
        if valid is None:
            keys = gather_all(keys)
        else:
            valid = torch.as_tensor(valid, device=keys.device).reshape(-1)
            if valid.shape[0] != keys.shape[0]:
                raise ValueError(f'valid has {valid.shape[0]} entries for '
                                 f'{keys.shape[0]} keys')
            packed = gather_all(torch.cat(  # (world N, dim + 1)
                [keys, valid.to(keys.dtype)[:, None]], dim=1))
            keys = packed[packed[:, -1] > 0.5, :-1]
        if keys.shape[0] > self.length:
            raise ValueError(f'cannot enqueue {keys.shape[0]} keys (all '
                             f'ranks) into a queue of length {self.length}')
        self.flush()
        self._pending = keys

    @torch.no_grad()
    def flush(self) -> None:
        """Write the held keys into ``feats`` in place and move ``ptr``."""
        keys, self._pending = self._pending, None
        if keys is None:
            return
        keys = keys.to(self.feats.dtype)
        n, start = keys.shape[0], int(self.ptr)
        end = start + n
        if end <= self.length:
            self.feats[start:end] = keys
        else:
            first = self.length - start
            self.feats[start:] = keys[:first]
            self.feats[:end - self.length] = keys[first:]
        self.ptr.fill_(end % self.length)

    def drop_pending(self) -> None:
        """Forget the keys held since the last :meth:`enqueue` (e.g. those
        of a training step that is skipped)."""
        self._pending = None

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self.flush()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, *args, **kwargs):
        self._pending = None  # keys of a step the loaded state never saw
        super()._load_from_state_dict(*args, **kwargs)

    def extra_repr(self) -> str:
        return f'length={self.length}, dim={self.dim}'
