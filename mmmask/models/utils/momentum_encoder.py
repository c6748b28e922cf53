"""The momentum (EMA) key encoder shared by every momentum-contrast method."""
import copy
from typing import Dict

import torch
import torch.nn as nn


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

    @torch.no_grad()
    def update(self, online: Dict[str, nn.Module]) -> None:
        """One EMA step from the online modules (same names as in __init__)."""
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

    def extra_repr(self) -> str:
        return f'momentum={self.momentum}'
