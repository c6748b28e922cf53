"""The output of one named submodule, with the forward stopped there."""
from typing import Optional

import torch
import torch.nn as nn


class _StopForward(Exception):
    """Raised by a forward hook to end a forward pass at a layer."""


def find_layer(net: nn.Module, layer: str, what: str = 'layer') -> nn.Module:
    """``net``'s submodule named ``layer``; a clear error naming ``what``
    (the argument that gave the name) when none is."""
    modules = dict(net.named_modules())
    if layer not in modules:
        top = [n for n, _ in net.named_children()]
        raise KeyError(f'{what} {layer!r} is not a module of '
                       f'{type(net).__name__} (its top-level modules: {top})')
    return modules[layer]


def layer_output(net: nn.Module, x: torch.Tensor, layer: Optional[str],
                 what: str = 'layer') -> torch.Tensor:
    """The output of ``net``'s submodule ``layer`` for input ``x``; the
    forward stops there (later layers cost nothing). ``layer=None``: the
    last of ``net(x)``'s outputs. ``what`` names the argument in errors."""
    if layer is None:
        return net(x)[-1]
    module = find_layer(net, layer, what)
    out = []

    def hook(mod, args, output):
        out.append(output)
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        net(x)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not out:
        raise RuntimeError(f'{what} {layer!r} of {type(net).__name__} was '
                           'not run by its forward')
    return out[0]
