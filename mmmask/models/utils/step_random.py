"""Random streams of the model side: one generator per (run seed, rank,
iteration, stream).

What the model draws itself (the device-side view augmentation, in-model
masks and noise fields) must differ across ranks and repeat exactly after a
resume. A generator whose seed is a function of the run's seed, the rank,
the training iteration and the stream's name does both without storing any
state: at iteration ``i`` of rank ``r`` a resumed run builds the same
generator as the uninterrupted one.

* run seed: ``torch.initial_seed()``, which mmengine's ``set_random_seed``
  sets from ``randomness.seed`` (a random seed shared by all ranks when it is
  None) and restores from the checkpoint's ``meta.seed`` on resume;
* iteration: the runner's ``MessageHub`` info ``'iter'`` (updated before
  every train iteration); outside a runner, a per-stream call counter;
* rank: ``mmengine.dist.get_rank()``.

Draw small parameter tensors from :meth:`StepRandom.torch` (a CPU
generator) and move them to the data's device, so that the CPU and a CUDA
device draw the same numbers.
"""
import hashlib
from typing import Optional, Tuple

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.logging import MessageHub


def current_iter() -> Optional[int]:
    """The runner's current training iteration, or None outside a runner."""
    if not MessageHub._instance_dict:  # no runner made a hub yet
        return None
    it = MessageHub.get_current_instance().get_info('iter')
    return None if it is None else int(it)


def step_seed(stream: str, step: int, rank: Optional[int] = None,
              run_seed: Optional[int] = None) -> int:
    """A 63-bit seed from (run seed, rank, step, stream name)."""
    rank = get_rank() if rank is None else rank
    run_seed = torch.initial_seed() if run_seed is None else run_seed
    text = f'{int(run_seed)}/{int(rank)}/{int(step)}/{stream}'.encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], 'little') >> 1


class StepRandom:
    """The generators of one named stream for the current iteration.

    Within one iteration, repeated calls return the same generator objects
    (so successive draws continue one stream); a new iteration starts new
    ones.

    Args:
        stream (str): the stream's name (e.g. ``'view_augment'``,
            ``'saliency_mask'``); different names give independent streams.
    """

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self._calls = 0
        self._key: Optional[Tuple[int, int, int]] = None
        self._torch: Optional[torch.Generator] = None
        self._numpy: Optional[np.random.Generator] = None

    def _refresh(self) -> None:
        it = current_iter()
        if it is None:  # outside a runner: one step per call
            it = -1 - self._calls
            self._calls += 1
        key = (torch.initial_seed(), get_rank(), it)
        if key != self._key or it < 0:
            seed = step_seed(self.stream, it, rank=key[1], run_seed=key[0])
            self._key = key
            self._torch = torch.Generator().manual_seed(seed)
            self._numpy = np.random.default_rng(seed)

    def torch(self) -> torch.Generator:
        """This iteration's CPU ``torch.Generator`` of the stream."""
        self._refresh()
        return self._torch

    def numpy(self) -> np.random.Generator:
        """This iteration's ``np.random.Generator`` of the stream (its own
        seed sequence, independent of :meth:`torch`'s draws)."""
        self._refresh()
        return self._numpy

    def __repr__(self) -> str:
        return f'{type(self).__name__}(stream={self.stream!r})'
