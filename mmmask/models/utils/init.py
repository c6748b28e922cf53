"""Weight initialisations shared by several models (pure functions)."""
import torch
import torch.nn as nn


@torch.no_grad()
def mae_init_(module: nn.Module) -> nn.Module:
    """MAE's initialisation of the Linear and LayerNorm layers, in place.

    Every ``nn.Linear`` in ``module``: weight ~ U(-a, a) with
    ``a = sqrt(6 / (fan_in + fan_out))`` (xavier-uniform), bias 0; every
    ``nn.LayerNorm``: weight 1, bias 0. This is MAE's ``_init_weights``
    (He et al. 2022), which the CMAE authors apply to their encoder and
    decoders and mmpretrain's MAE applies to the whole model through its
    ``init_cfg`` (xavier-uniform Linear, LayerNorm 1 / 0). Convolutions,
    BatchNorm, tokens and position embeddings are left as they are (each
    model sets those itself).

    Returns ``module``.
    """
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
