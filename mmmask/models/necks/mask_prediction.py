"""MaskCo's mask prediction head (MPH)."""
import torch
import torch.nn as nn
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule

from mmmask.registry import MODELS


@MODELS.register_module()
class MaskPredictionHead(BaseModule):
    """Residual stack of Conv3x3-BN-ReLU on the query's C5 map (MaskCo).

    MaskCo's MPH lets the masked query "predict" the features of the
    masked-out region, closing the gap between masked and unmasked
    features. Its layers are not published; mmmask's default (open design,
    docs/methods.md section 4): ``num_convs`` = 2 Conv3x3-BN-ReLU at the
    input width in a ResNet-style residual block,

        ``y = ReLU(x + BN_n(Conv_n(... ReLU(BN_1(Conv_1(x))))))``

    (the last ReLU after the addition) with the last BN's scale set to 0
    (``zero_init_last``), so the MPH starts as the identity on C5 (which is
    >= 0): the query path starts equal to the key path and the MPH learns
    only the correction the mask calls for (the measurement behind it:
    docs/benchmarks.md, "The masked ResNet methods"). It sits between the backbone and RoIAlign (a neck by position; "head"
    is the paper's name).

    Shapes: ``(N, C, h, w) -> (N, C, h, w)``.

    Args:
        in_channels (int): C (2048 for ResNet-50).
        num_convs (int): stacked Conv3x3-BN(-ReLU) (2).
        residual (bool): the residual block above (True); False: a plain
            stack of Conv3x3-BN-ReLU.
        zero_init_last (bool): start the residual block as the identity
            (True).
        norm_cfg (dict): normalisation (BN).
    """

    def __init__(self, in_channels: int = 2048, num_convs: int = 2,
                 residual: bool = True, zero_init_last: bool = True,
                 norm_cfg: dict = dict(type='BN'), init_cfg=None) -> None:
        super().__init__(init_cfg)
        if num_convs < 1:
            raise ValueError(f'num_convs must be >= 1, got {num_convs}')
        self.in_channels = in_channels
        self.residual = residual
        self.zero_init_last = zero_init_last and residual
        self.convs = nn.Sequential(*[
            ConvModule(in_channels, in_channels, 3, padding=1,
                       norm_cfg=norm_cfg,
                       act_cfg=(None if residual and i == num_convs - 1
                                else dict(type='ReLU')))
            for i in range(num_convs)
        ])
        self._zero_last()

    def _zero_last(self) -> None:
        if self.zero_init_last:
            nn.init.zeros_(self.convs[-1].norm.weight)

    def init_weights(self) -> None:
        super().init_weights()  # (ConvModule sets every norm scale to 1)
        self._zero_last()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f'MaskPredictionHead has in_channels='
                             f'{self.in_channels}, got a map of shape '
                             f'{tuple(x.shape)}')
        out = self.convs(x)
        return torch.relu(out + x) if self.residual else out
