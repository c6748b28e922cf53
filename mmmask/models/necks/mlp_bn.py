"""Linear-BN-ReLU-Linear projectors and predictors (BYOL / CMAE shape)."""
import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmmask.registry import MODELS


@MODELS.register_module()
class MLPBNNeck(BaseModule):
    """``Linear(in, hid) -> BN -> ReLU -> Linear(hid, out, bias=last_bias)``.

    CMAE: projector 768 -> 1536 -> 256 and predictor 256 -> 1536 -> 256,
    both with ``last_bias=False``.

    Args:
        in_channels (int), hid_channels (int), out_channels (int).
        last_bias (bool): bias of the last Linear (CMAE: False).
    Shapes: (N, in) -> (N, out).
    """

    def __init__(self, in_channels: int = 768, hid_channels: int = 1536,
                 out_channels: int = 256, last_bias: bool = False,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hid_channels), nn.BatchNorm1d(hid_channels),
            nn.ReLU(inplace=True),
            nn.Linear(hid_channels, out_channels, bias=last_bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)
