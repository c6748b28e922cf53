"""MAE-style decoders that take the encoder's visible tokens and the mask."""
import torch
from mmpretrain.models import MAEPretrainDecoder

from mmmask.registry import MODELS
from ..utils.init import mae_init_


def restore_ids(mask: torch.Tensor) -> torch.Tensor:
    """MAE's ``ids_restore`` for a boolean mask.

    Sorting the tokens with visible ones first (raster order kept, a stable
    sort) gives ``ids_shuffle``; ``ids_restore = argsort(ids_shuffle)``
    puts ``[visible tokens, mask tokens]`` back in raster order.

    Args:
        mask: (N, h, w) or (N, L) bool, True = masked.
    Returns:
        (N, L) long.
    """
    flat = mask.reshape(mask.shape[0], -1).to(torch.uint8)
    ids_shuffle = torch.sort(flat, dim=1, stable=True).indices
    return torch.argsort(ids_shuffle, dim=1)


@MODELS.register_module()
class MaskedTokenDecoder(MAEPretrainDecoder):
    """mmpretrain's :class:`MAEPretrainDecoder` called with the mask.

    ``decoder_embed`` -> mask tokens at the masked positions -> fixed sin-cos
    position embedding -> ``decoder_depth`` Transformer blocks -> LN ->
    ``decoder_pred`` (``patch_size**2 * 3`` pixels, or
    ``predict_feature_dim`` features) for every token.

    CMAE: the pixel decoder (8 blocks, 512 wide, 16 heads, 16*16*3 out) and
    the feature decoder (2 blocks, 768 out); MACRL: one light decoder per
    branch. Arguments are ``MAEPretrainDecoder``'s.

    Shapes: ``forward(x (N, 1 + V, C), mask (N, h, w)) -> (N, L, out)``
    (cls position dropped).
    """

    def init_weights(self) -> None:
        """mmpretrain's (fixed sin-cos ``decoder_pos_embed``, ``mask_token``
        N(0, 0.02^2)), then MAE's rule for every Linear (``decoder_embed``,
        the blocks' qkv / proj / FFN, ``decoder_pred``: xavier-uniform,
        bias 0) and LayerNorm (1 / 0), as the CMAE authors' decoder."""
        super().init_weights()
        if isinstance(self.init_cfg, dict) and \
                self.init_cfg.get('type') == 'Pretrained':
            return
        mae_init_(self)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if x.shape[1] - 1 != int((~mask[0]).sum()):
            raise ValueError(f'{x.shape[1] - 1} visible tokens given for a '
                             f'mask with {int((~mask[0]).sum())} visible')
        return super().forward(x, restore_ids(mask))
