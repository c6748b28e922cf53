"""Projection necks of momentum-contrast methods."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmengine.model import BaseModule

from mmmask.errors import ChannelMismatchError
from mmmask.registry import MODELS


def _check_input(name: str, x: Sequence[torch.Tensor], in_channels: int):
    if not isinstance(x, (tuple, list)) or len(x) != 1:
        raise ValueError(f'{name} takes the tuple of one feature map that the '
                         f'backbone returns (set its out_indices to one stage)'
                         f', got {type(x).__name__} of length {len(x)}')
    if x[0].dim() != 4 or x[0].shape[1] != in_channels:
        raise ChannelMismatchError(f'{name} has in_channels={in_channels} but the '
                         f'backbone gives a map of shape {tuple(x[0].shape)}; '
                         'set the neck\'s in_channels to the backbone\'s '
                         'output channels')
    return x[0]


@MODELS.register_module()
class MLPProjectionNeck(BaseModule):
    """MoCo v2 neck: global average pool -> Linear -> ReLU -> Linear.

    Args:
        in_channels (int): backbone channels (2048 for ResNet-50).
        hid_channels (int): hidden width (2048).
        out_channels (int): embedding size (128).
    Shapes: ``((N, in, H, W),) -> ((N, out),)``.
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 2048,
                 out_channels: int = 128, init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.mlp = nn.Sequential(
            nn.Linear(in_channels, hid_channels), nn.ReLU(inplace=True),
            nn.Linear(hid_channels, out_channels))

    def forward(self, x: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        x = _check_input(type(self).__name__, x, self.in_channels)
        return (self.mlp(x.mean(dim=(2, 3))), )


@MODELS.register_module()
class DenseProjectionNeck(BaseModule):
    """DenseCL neck: the MoCo v2 global MLP and a dense 1x1-conv MLP in parallel.

    Global: avg-pool -> Linear(in, hid) -> ReLU -> Linear(hid, out).
    Dense: [AdaptiveAvgPool to S x S if ``num_grid``] -> Conv1x1(in, hid) ->
    ReLU -> Conv1x1(hid, out); the dense output is also average-pooled to one
    vector per image (what DenseCL's second queue holds).

    Args:
        in_channels (int): backbone channels (2048 for ResNet-50).
        hid_channels (int): hidden width (2048).
        out_channels (int): embedding size (128).
        num_grid (int, optional): S; ``None`` keeps the native C5 grid
            (7 x 7 on 224 px, the paper's best).
    Returns:
        ``(global (N, out), dense (N, out, S*S), dense_pooled (N, out))``.

    :meth:`to_grid` brings any map to the dense output's grid (what DenseCL
    matches its backbone features on).
    """

    def __init__(self, in_channels: int = 2048, hid_channels: int = 2048,
                 out_channels: int = 128, num_grid: Optional[int] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.num_grid = num_grid
        self.global_mlp = nn.Sequential(
            nn.Linear(in_channels, hid_channels), nn.ReLU(inplace=True),
            nn.Linear(hid_channels, out_channels))
        self.dense_mlp = nn.Sequential(
            nn.Conv2d(in_channels, hid_channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hid_channels, out_channels, 1))

    def to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, C, S, S): ``x`` on the grid of the dense
        output, location for location (average-pooled to S x S when
        ``num_grid`` is S; unchanged when it is None)."""
        if self.num_grid is None:
            return x
        return nn.functional.adaptive_avg_pool2d(x, self.num_grid)

    def forward(self, x: Sequence[torch.Tensor]
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = _check_input(type(self).__name__, x, self.in_channels)
        global_feat = self.global_mlp(x.mean(dim=(2, 3)))
        dense = self.dense_mlp(self.to_grid(x)).flatten(2)  # (N, out, S*S)
        return global_feat, dense, dense.mean(dim=2)
