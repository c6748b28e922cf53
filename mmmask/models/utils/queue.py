"""One feature queue for every momentum-contrast method."""
import torch
import torch.nn as nn
import torch.nn.functional as F

from .dist import gather_all


class FeatureQueue(nn.Module):
    """A FIFO of L2-normalised key features (MoCo's dictionary).

    Buffers (saved in checkpoints):
        feats: (length, dim), one key per row, initialised to random unit
            vectors.
        ptr: () long, the row the next key is written to.

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

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Gather ``keys`` (N, dim) from all ranks and overwrite the oldest
        rows in place (wrapping around the end)."""
        keys = gather_all(keys.detach())
        n = keys.shape[0]
        if n > self.length:
            raise ValueError(f'cannot enqueue {n} keys (all ranks) into a '
                             f'queue of length {self.length}')
        start = int(self.ptr)
        end = start + n
        if end <= self.length:
            self.feats[start:end] = keys.to(self.feats.dtype)
        else:
            first = self.length - start
            self.feats[start:] = keys[:first].to(self.feats.dtype)
            self.feats[:end - self.length] = keys[first:].to(self.feats.dtype)
        self.ptr.fill_(end % self.length)

    def extra_repr(self) -> str:
        return f'length={self.length}, dim={self.dim}'
