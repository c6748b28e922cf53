"""A ViT that encodes only the visible tokens of a given mask (MAE-style)."""
from typing import Optional

import torch
from mmpretrain.models import VisionTransformer
from mmpretrain.models.utils import build_2d_sincos_position_embedding

from mmmask.registry import MODELS
from ..utils.init import mae_init_


@MODELS.register_module()
class MaskedViT(VisionTransformer):
    """mmpretrain's :class:`VisionTransformer` with a fixed 2-D sin-cos
    position embedding and an encoder pass over the visible tokens of a mask
    drawn outside (by a ``MASK_GENERATORS`` generator).

    The parameters are exactly mmpretrain's ``VisionTransformer``'s
    (``patch_embed.projection``, ``cls_token``, ``pos_embed``,
    ``layers.i.*``, ``ln1``), so a checkpoint's ``backbone.`` tensors load
    into an mmpretrain ViT or an mmseg config that uses it.

    :meth:`forward` without a mask is the parent's (what ``extract_feat`` and
    downstream use); :meth:`encode` is the pre-training pass.

    Args:
        fixed_pos_embed (bool): sin-cos position embedding, not learnt
            (MAE / CMAE: True).
        Others: mmpretrain's ``VisionTransformer`` (``arch``, ``img_size``,
        ``patch_size``, ``norm_cfg`` (LN eps 1e-6), ``final_norm``,
        ``out_type`` (default ``'raw'``), ...).
    """

    def __init__(self, arch='b', img_size=224, patch_size=16,
                 out_type: str = 'raw', final_norm: bool = True,
                 norm_cfg=dict(type='LN', eps=1e-6),
                 fixed_pos_embed: bool = True, **kwargs) -> None:
        super().__init__(arch=arch, img_size=img_size, patch_size=patch_size,
                         out_type=out_type, final_norm=final_norm,
                         norm_cfg=norm_cfg, with_cls_token=True, **kwargs)
        self.fixed_pos_embed = fixed_pos_embed
        if fixed_pos_embed:
            self.pos_embed.requires_grad = False

    @property
    def num_patches(self) -> int:
        return self.patch_resolution[0] * self.patch_resolution[1]

    def init_weights(self) -> None:
        """MAE's / the CMAE authors' initialisation (unless ``init_cfg`` is
        ``Pretrained``): every Linear (attention qkv and proj, FFN)
        xavier-uniform with zero bias, every LayerNorm 1 / 0
        (:func:`mae_init_`); the patch-embedding conv xavier-uniform over
        its (C_out, C_in * p * p) matrix (bias as PyTorch's default); the
        sin-cos position embedding; the cls token N(0, 0.02^2)."""
        super().init_weights()
        if isinstance(self.init_cfg, dict) and \
                self.init_cfg.get('type') == 'Pretrained':
            return
        mae_init_(self)
        if self.fixed_pos_embed:
            h, w = self.patch_resolution
            if h != w:
                raise ValueError('the sin-cos position embedding needs a '
                                 f'square token grid, got {h} x {w}')
            self.pos_embed.data.copy_(build_2d_sincos_position_embedding(
                h, self.embed_dims, cls_token=True).float())
        w = self.patch_embed.projection.weight.data
        torch.nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        torch.nn.init.normal_(self.cls_token, std=.02)

    def encode(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None,
               final_norm: bool = True) -> torch.Tensor:
        """Tokens of the visible patches.

        Args:
            x: (N, 3, H, W) at the pre-training size.
            mask: (N, h, w) or (N, L) bool, True = masked; every image must
                hide the same number of tokens. ``None``: all tokens.
            final_norm: apply ``ln1`` (the online encoder: True; CMAE's
                target encoder: False).
        Returns:
            (N, 1 + V, C): the cls token, then the V visible tokens in raster
            order (V = L without a mask).
        """
        n = x.shape[0]
        tokens = self.patch_embed(x)[0] + self.pos_embed[:, 1:]  # (N, L, C)
        if mask is not None:
            keep = ~mask.reshape(n, -1)  # (N, L)
            num_vis = keep.sum(1)
            if not bool((num_vis == num_vis[0]).all()):
                raise ValueError('every image of a batch must keep the same '
                                 'number of visible tokens')
            tokens = tokens[keep].view(n, int(num_vis[0]), -1)  # (N, V, C)
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(n, -1, -1)
        x = self.drop_after_pos(torch.cat([cls, tokens], dim=1))
        x = self.pre_norm(x)
        for layer in self.layers:
            x = layer(x)
        if final_norm and self.final_norm:
            x = self.ln1(x)
        return x
