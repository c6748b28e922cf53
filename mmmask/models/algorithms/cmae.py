"""CMAE: `Contrastive Masked Autoencoders are Stronger Vision Learners
<https://arxiv.org/abs/2207.13532>`_ (Huang et al., TPAMI 2023)."""
from typing import Dict, List, Optional

import torch

from mmmask.registry import MASK_GENERATORS, MODELS
from ..losses import cross_rank_info_nce, masked_patch_loss, \
    patch_pixel_targets
from ..utils import MomentumEncoder, StepRandom, mae_init_
from .base import BaseSelfSupAlgorithm, fallback_sync_bn


def masks_from(data_samples: Optional[list], generator, num: int,
               device: torch.device, rng=None) -> torch.Tensor:
    """(N, h, w) bool masks: the ``mask`` of each data sample when the
    pipeline drew them (``GenerateMask``), else ``num`` fresh draws of
    ``generator`` with ``rng`` (the model's :class:`StepRandom` stream: its
    own per rank and iteration, the same after a resume)."""
    if data_samples and 'mask' in data_samples[0]:
        return torch.stack([torch.as_tensor(ds.mask) for ds in data_samples
                            ]).to(device=device, dtype=torch.bool)
    return generator.batch(num, rng=rng, device=device)


@MODELS.register_module()
class CMAE(BaseSelfSupAlgorithm):
    """Contrastive Masked Autoencoder.

    For an online view ``x_o`` and a pixel-shifted, colour-augmented target
    view ``x_t`` of the same image (``PixelShiftViews``), and a mask ``M``
    (0.65 over 2 x 2 token blocks):

    * online encoder ``f`` (:class:`MaskedViT`, fixed sin-cos positions) on
      the visible tokens of ``x_o``: ``h = f(x_o, M)`` (N, 1 + V, C);
    * pixel decoder: ``y = g_pix(h, M)`` (N, L, p*p*3);
      ``L_rec = mean_{masked} mean_j (y - norm_pix(x_o))^2`` (the
      reconstruction loss, MSE as MAE's);
    * feature decoder: ``z = mean_L g_feat(h, M)`` (N, C) over all tokens,
      ``q = pred(proj(z))`` (N, 256);
    * target branch, EMA of (``f``, ``proj``) with momentum m
      (``theta_t <- m theta_t + (1 - m) theta``):
      ``k = proj_t(mean_{patch tokens} f_t(x_t))`` (no cls, no final LN);
    * ``L_ct`` = InfoNCE(q, keys of all ranks, tau), positives the same
      image's key, no queue;
    * ``L = rc_weight * L_rec + ct_weight * 2 tau * L_ct`` (the ``2 tau``
      factor is the authors' code's, not the paper's formula).

    Equations and defaults: docs/methods.md section 2.

    ``loss()`` returns ``loss_rec = rc_weight * L_rec`` and
    ``loss_ct = ct_weight * 2 tau * L_ct``; the runner sums them.

    Args:
        backbone (dict): the online encoder (``MaskedViT``).
        pixel_decoder (dict): ``MaskedTokenDecoder`` (8 blocks, 512, 16
            heads, 16*16*3 out).
        feature_decoder (dict): ``MaskedTokenDecoder`` (2 blocks, 768 out).
        projector (dict): ``MLPBNNeck`` 768 -> 1536 -> 256 (EMA-copied).
        predictor (dict): ``MLPBNNeck`` 256 -> 1536 -> 256.
        mask_generator (dict): ``MASK_GENERATORS`` config (``BlockRandomMask``
            14 x 14, 2 x 2, 0.65); a ``mask`` in the data samples wins.
        momentum (float): m of the target encoder (0.996, constant).
        temperature (float): tau (0.07).
        rc_weight (float): reconstruction weight (1.0).
        ct_weight (float): contrastive weight (1.0).
        norm_pix (bool): per-patch normalised pixel targets (True).
        patch_size (int, optional): pixel patch of the targets (default the
            backbone's).
        proj_norm_cfg (dict, optional): the hidden normalisation of the
            projector and the predictor (``norm_cfg`` of ``MLPBNNeck``)
            unless their configs give one: SyncBN with eps 1e-6, as the
            authors' (falls back to BN without CUDA DDP, with a warning);
            ``None`` leaves the necks' own default.

    Masks drawn here (no ``mask`` in the data samples) come from the
    :class:`StepRandom` stream ``'cmae_mask'``: each rank its own, the same
    at iteration i after a resume.

    Initialisation (:meth:`init_weights`): MAE's, as the authors'. Encoder
    and decoders: see ``MaskedViT`` and ``MaskedTokenDecoder``; projector
    and predictor: every Linear xavier-uniform with zero bias (the authors'
    ``NonLinearNeck`` keeps PyTorch's default Linear init; mmmask applies
    MAE's rule to every Linear of the model, as mmpretrain's MAE
    ``init_cfg`` does), BN weight 1 / bias 0.
    """

    def __init__(self, backbone: dict, pixel_decoder: dict,
                 feature_decoder: dict, projector: dict, predictor: dict,
                 mask_generator: dict = dict(type='BlockRandomMask',
                                             input_size=14, block_size=2,
                                             mask_ratio=0.65),
                 momentum: float = 0.996, temperature: float = 0.07,
                 rc_weight: float = 1.0, ct_weight: float = 1.0,
                 norm_pix: bool = True, patch_size: Optional[int] = None,
                 proj_norm_cfg: Optional[dict] = dict(type='SyncBN',
                                                      eps=1e-6),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(backbone, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.pixel_decoder = MODELS.build(pixel_decoder)
        self.feature_decoder = MODELS.build(feature_decoder)
        for name, cfg in (('projector', projector), ('predictor', predictor)):
            cfg = dict(cfg)
            if proj_norm_cfg is not None:
                cfg.setdefault('norm_cfg', dict(proj_norm_cfg))
            setattr(self, name, fallback_sync_bn(MODELS.build(cfg),
                                                 f'CMAE.{name}'))
        self.mask_generator = MASK_GENERATORS.build(mask_generator)
        self.mask_random = StepRandom('cmae_mask')
        self.target = MomentumEncoder(
            dict(backbone=self.backbone, projector=self.projector), momentum)
        self.temperature = temperature
        self.rc_weight = rc_weight
        self.ct_weight = ct_weight
        self.norm_pix = norm_pix
        self.patch_size = patch_size or \
            self.backbone.patch_embed.projection.kernel_size[0]

    def init_weights(self) -> None:
        """MAE's rule on the projector and predictor, then mmengine's
        (every submodule's ``init_weights``; an ``init_cfg`` of the necks or
        a ``Pretrained`` one of the model applies after it)."""
        if not self.is_init:
            mae_init_(self.projector)
            mae_init_(self.predictor)
        super().init_weights()

    def online(self, img: torch.Tensor, mask: torch.Tensor):
        """Pixel predictions (N, L, p*p*3) and the predictor output q
        (N, D) for the online view ``img`` (N, 3, H, W) under ``mask``."""
        latent = self.backbone.encode(img, mask)  # (N, 1 + V, C)
        pred_pix = self.pixel_decoder(latent, mask)  # (N, L, p*p*3)
        feat = self.feature_decoder(latent, mask).mean(dim=1)  # (N, C')
        return pred_pix, self.predictor(self.projector(feat))

    @torch.no_grad()
    def reconstruct(self, img: torch.Tensor,
                    mask: torch.Tensor) -> torch.Tensor:
        """Pixel-decoder predictions (N, L, p*p*3) for ``img`` (N, 3, H, W)
        under ``mask`` (N, h, w); per-patch normalised if ``norm_pix``."""
        return self.pixel_decoder(self.backbone.encode(img, mask), mask)

    @torch.no_grad()
    def target_keys(self, img: torch.Tensor) -> torch.Tensor:
        """EMA step, then target projections k (N, D) of ``img``: mean of
        the patch tokens (cls excluded) without the final LayerNorm."""
        self.target.update(dict(backbone=self.backbone,
                                projector=self.projector))
        tokens = self.target.backbone.encode(img, None, final_norm=False)
        return self.target.projector(tokens[:, 1:].mean(dim=1))

    def loss(self, inputs: List[torch.Tensor],
             data_samples=None) -> Dict[str, torch.Tensor]:
        """inputs: [online view, target view], each (N, 3, H, W)."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError('CMAE needs [online view, target view] per '
                             'image: use the PixelShiftViews transform')
        img_o, img_t = inputs
        mask = masks_from(data_samples, self.mask_generator, img_o.shape[0],
                          img_o.device,
                          self.mask_random.numpy())  # (N, h, w)
        pred_pix, q = self.online(img_o, mask)
        target = patch_pixel_targets(img_o, self.patch_size, self.norm_pix)
        loss_rec = masked_patch_loss(pred_pix, target, mask, 'mse')
        k = self.target_keys(img_t)
        loss_ct = cross_rank_info_nce(q, k, self.temperature)
        return dict(
            loss_rec=self.rc_weight * loss_rec,
            loss_ct=self.ct_weight * 2 * self.temperature * loss_ct)
