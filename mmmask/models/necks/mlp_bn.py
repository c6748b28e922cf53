"""Linear-BN-ReLU-Linear projectors and predictors (BYOL / CMAE shape)."""
import torch
import torch.nn as nn
from mmcv.cnn import build_norm_layer
from mmengine.model import BaseModule

from mmmask.registry import MODELS


@MODELS.register_module()
class MLPBNNeck(BaseModule):
    """``Linear(in, hid) -> norm -> ReLU -> Linear(hid, out,
    bias=last_bias)``.

    CMAE: projector 768 -> 1536 -> 256 and predictor 256 -> 1536 -> 256,
    both with ``last_bias=False`` and SyncBN (eps 1e-6) as the authors'
    ``NonLinearNeck`` (CMAE passes ``norm_cfg``).

    Args:
        in_channels (int), hid_channels (int), out_channels (int).
        last_bias (bool): bias of the last Linear (CMAE: False).
        norm_cfg (dict): the hidden normalisation, an mmcv norm config
            (default ``BN1d``, eps 1e-5; ``dict(type='SyncBN', eps=1e-6)``
            for CMAE; a model falls SyncBN back to BN without CUDA DDP,
            ``fallback_sync_bn``).
    Shapes: (N, in) -> (N, out).
    """

    def __init__(self, in_channels: int = 768, hid_channels: int = 1536,
                 out_channels: int = 256, last_bias: bool = False,
                 norm_cfg: dict = dict(type='BN1d'), init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hid_channels),
            build_norm_layer(norm_cfg, hid_channels)[1],
            nn.ReLU(inplace=True),
            nn.Linear(hid_channels, out_channels, bias=last_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
