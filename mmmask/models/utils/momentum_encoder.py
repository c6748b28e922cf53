"""The momentum (EMA) key encoder shared by every momentum-contrast method."""
import copy
import weakref
from typing import Dict, FrozenSet, Optional

import torch
import torch.nn as nn
from torch.optim.optimizer import register_optimizer_step_post_hook

# Momentum encoders that took an EMA step, and the one global optimizer hook
# that tells them when an optimizer holding their online weights stepped.
_ENCODERS: 'weakref.WeakSet[MomentumEncoder]' = weakref.WeakSet()
_HOOK = None


def _after_optimizer_step(optimizer, args, kwargs) -> None:
    """``torch.optim`` post-step hook: mark the encoders whose online
    parameters this optimizer holds."""
    if not _ENCODERS:
        return
    held = {id(p) for group in optimizer.param_groups
            for p in group['params']}
    for enc in list(_ENCODERS):
        if enc._online_ids and not enc._online_ids.isdisjoint(held):
            enc._trained = enc._stepped = True


class MomentumEncoder(nn.Module):
    """EMA copies of online modules: ``theta_k <- m * theta_k + (1 - m) * theta_q``
    (MoCo, Eq. 2).

    Convention: ``momentum`` is the paper's m, the share the key encoder
    *keeps* (0.999 for MoCo v2 / DenseCL). mmpretrain and mmengine's
    ``ExponentialMovingAverage`` pass ``1 - m`` (0.001); the checkpoint
    converter in :mod:`mmmask.engine.checkpoint.convert_mmpretrain` translates.

    The first :meth:`update` copies the online weights (the online modules
    may be re-initialised by ``init_weights`` after this copy was made);
    buffers (BN running statistics) are copied from the online modules at
    every update, as mmengine's EMA does with ``update_buffers=False``.

    One EMA step per optimizer step. The methods call :meth:`update` at the
    start of every ``loss()``. Under gradient accumulation
    (``optim_wrapper.accumulative_counts = k``) the online weights change
    only every k micro-batches; an update in the micro-batches between would
    move the keys again towards the same weights (an effective momentum of
    m^k). So once an optimizer (any ``torch.optim.Optimizer``, seen through
    ``torch.optim``'s global post-step hook) that holds the online
    parameters has stepped, :meth:`update` steps only when such an optimizer
    stepped since the last update, and otherwise does nothing. Without
    accumulation every micro-batch follows a step: the math is unchanged.
    A step that the optimizer does not take (AMP's loss scaler skipping a
    step with inf/NaN gradients) takes no EMA step either. Outside training
    (no optimizer ever stepped these parameters: tests, scripts that edit
    the weights by hand) every call steps; so do the calls before the first
    optimizer step, which leave the first copy as it is (the online weights
    have not changed since). Optimizers that hold other
    tensors than the modules' parameters (FSDP's flat parameters, DeepSpeed
    partitions) are not recognised: every call steps, as before.

    Submodules are named like the online ones, so the key backbone of an
    algorithm is ``key_encoder.backbone``. The parameters never get
    gradients.

    Args:
        modules (dict[str, nn.Module]): the online modules to copy.
        momentum (float): m in [0, 1).
    """

    def __init__(self, modules: Dict[str, nn.Module],
                 momentum: float = 0.999) -> None:
        super().__init__()
        if not 0.0 <= momentum < 1.0:
            raise ValueError(
                f'momentum is the share the key encoder keeps (paper m, '
                f'e.g. 0.999) and must be in [0, 1), got {momentum}')
        self.momentum = momentum
        for name, module in modules.items():
            self.add_module(name, copy.deepcopy(module).requires_grad_(False))
        self.register_buffer('num_updates', torch.zeros((), dtype=torch.long))
        self._online_ids: Optional[FrozenSet[int]] = None
        self._trained = False  # an optimizer of the online weights stepped
        self._stepped = False  # ... since the last EMA step

    @property
    def due(self) -> bool:
        """Whether the next :meth:`update` takes an EMA step."""
        return (int(self.num_updates) == 0 or not self._trained
                or self._stepped)

    @torch.no_grad()
    def update(self, online: Dict[str, nn.Module]) -> None:
        """One EMA step from the online modules (same names as in __init__),
        unless no optimizer step happened since the last one (see above)."""
        global _HOOK
        ids = frozenset(id(p) for name, _ in self.named_children()
                        for p in online[name].parameters())
        if ids != self._online_ids:  # new online modules: start afresh
            self._online_ids, self._trained = ids, False
        if not self.due:
            return
        if _HOOK is None:
            _HOOK = register_optimizer_step_post_hook(_after_optimizer_step)
        _ENCODERS.add(self)
        first = int(self.num_updates) == 0
        for name, key_module in self.named_children():
            src = online[name]
            k_params = list(key_module.parameters())
            q_params = [p.detach() for p in src.parameters()]
            if len(k_params) != len(q_params):
                raise RuntimeError(
                    f'MomentumEncoder: the online {name!r} has '
                    f'{len(q_params)} parameters, its key copy '
                    f'{len(k_params)}; the architectures differ')
            if first:
                torch._foreach_copy_(k_params, q_params)
            else:
                torch._foreach_lerp_(k_params, q_params, 1.0 - self.momentum)
            for b_k, b_q in zip(key_module.buffers(), src.buffers()):
                b_k.copy_(b_q)
        self.num_updates += 1
        self._stepped = False

    def extra_repr(self) -> str:
        return f'momentum={self.momentum}'
