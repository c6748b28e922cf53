"""MACRL: `Masked Contrastive Representation Learning
<https://arxiv.org/abs/2211.06012>`_ (Yao et al., 2022).

The paper has no public code; what is not in its abstract is mmmask's
design (docs/methods.md, section 5), every choice an argument below.
"""
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

from mmmask.registry import MASK_GENERATORS, MODELS
from ..losses import info_nce, masked_patch_loss, patch_pixel_targets
from ..utils import FeatureQueue, MomentumEncoder, StepRandom, mae_init_
from .base import BaseSelfSupAlgorithm

BRANCHES = ('strong', 'weak')


def contrastive_feature(latent: torch.Tensor, projector) -> torch.Tensor:
    """(N, 1 + V, C) encoder tokens -> (N, feat_dim): the normalised
    projection of the mean visible patch token (the cls token left out)."""
    return F.normalize(projector(latent[:, 1:].mean(dim=1)), dim=1)


@MODELS.register_module()
class MACRL(BaseSelfSupAlgorithm):
    """Masked Contrastive Representation Learning: a siamese pair of
    masked encoder-decoders with asymmetric corruption.

    For a strongly augmented view ``x_s`` masked with ratio ``r_s`` (0.75)
    and a weakly augmented view ``x_w`` masked with ``r_w`` (0.5) of the
    same image, with one shared encoder ``f`` (:class:`MaskedViT`):

    * ``h_b = f(x_b, M_b)`` on the visible tokens (b in {s, w});
    * ``z_b = normalize(proj(mean of h_b's visible patch tokens))``;
    * keys ``k_b``: with ``momentum`` m (MoCo), ``k_b = normalize(
      proj_k(mean of f_k(x_b, M_b)'s visible patch tokens))`` from an EMA
      copy (``theta_k <- m theta_k + (1 - m) theta``) of (``f``, ``proj``)
      on the same view and mask, no gradient; without it (``None``),
      ``k_b = z_b``;
    * ``L_con = (InfoNCE(z_s, k_w, Q_w) + InfoNCE(z_w, k_s, Q_s)) / 2``
      with tau (0.2), where ``Q_b`` is a MoCo-style queue of branch b's past
      keys ``k_b`` (all ranks; the other branch's queue gives the
      negatives); without ``momentum``, gradients flow into both ``z`` of a
      pair unless ``detach_positive``;
    * a light MAE decoder per branch: ``y_b = g_b(h_b, M_b)``;
      ``L_rec = mean_b mean_{masked} mean_j |y_b - norm_pix(x_b)|`` (L1;
      a branch with nothing masked is left out);
    * ``L = L_con + lambda_rec * L_rec``.

    ``loss()`` returns ``loss_con`` and ``loss_rec`` (already multiplied
    by ``lambda_rec``).

    Args:
        backbone (dict): the shared encoder (``MaskedViT``).
        decoder (dict): ``MaskedTokenDecoder`` config, built once per branch
            (or once, with ``share_decoder``).
        projector (dict): MLP from the encoder width to ``feat_dim``.
        strong_mask (dict): ``MASK_GENERATORS`` config of the strong branch
            (``RandomPatchMask``, ratio 0.75).
        weak_mask (dict): the weak branch's (``RandomPatchMask``, 0.5; 0.0
            leaves it unmasked).
        queue_len (int): length of each branch's queue (4096).
        feat_dim (int): projector output size (128).
        temperature (float): tau (0.2).
        lambda_rec (float): weight of L_rec (1.0).
        rec_loss (str): ``'l1'`` (MACRL) or ``'mse'``.
        norm_pix (bool): per-patch normalised pixel targets (True).
        share_decoder (bool): one decoder for both branches (False).
        detach_positive (bool): stop the gradient through the positive
            (the other branch's feature) (False). Keys of a momentum
            encoder never get one.
        momentum (float, optional): m of an EMA key encoder of the backbone
            and projector (:class:`MomentumEncoder`) giving the positives
            and the queued negatives (0.99). ``None``: the online features
            are their own keys (the siamese reading of the abstract). A
            queue needs keys that change slowly (MoCo, Sec. 3.2: m = 0
            fails); what online keys do to it: docs/benchmarks.md, "The
            ViT methods".

    Under DDP a weak branch with ratio 0.0 leaves its own decoder unused:
    set ``share_decoder=True`` or ``find_unused_parameters=True``.

    The masks are drawn from the :class:`StepRandom` stream
    ``'macrl_mask'`` (strong, then weak): each rank its own, the same at
    iteration i after a resume.

    Initialisation (:meth:`init_weights`): MAE's (``MaskedViT``,
    ``MaskedTokenDecoder``); the projector's Linears xavier-uniform with
    zero bias too (:func:`mae_init_`).
    """

    def __init__(self, backbone: dict, decoder: dict, projector: dict,
                 strong_mask: dict = dict(type='RandomPatchMask',
                                          input_size=8, mask_ratio=0.75),
                 weak_mask: dict = dict(type='RandomPatchMask', input_size=8,
                                        mask_ratio=0.5),
                 queue_len: int = 4096, feat_dim: int = 128,
                 temperature: float = 0.2, lambda_rec: float = 1.0,
                 rec_loss: str = 'l1', norm_pix: bool = True,
                 share_decoder: bool = False, detach_positive: bool = False,
                 momentum: Optional[float] = 0.99,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(backbone, data_preprocessor=data_preprocessor,
                         init_cfg=init_cfg)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if rec_loss not in ('l1', 'mse'):
            raise ValueError(f"rec_loss must be 'l1' or 'mse', got "
                             f'{rec_loss!r}')
        self.decoder_strong = MODELS.build(decoder)
        self.decoder_weak = (self.decoder_strong if share_decoder
                             else MODELS.build(decoder))
        self.projector = MODELS.build(projector)
        self.mask_generators = dict(strong=MASK_GENERATORS.build(strong_mask),
                                    weak=MASK_GENERATORS.build(weak_mask))
        self.mask_random = StepRandom('macrl_mask')
        self.queue_strong = FeatureQueue(queue_len, feat_dim)
        self.queue_weak = FeatureQueue(queue_len, feat_dim)
        self.temperature = temperature
        self.lambda_rec = lambda_rec
        self.rec_loss = rec_loss
        self.norm_pix = norm_pix
        self.detach_positive = detach_positive
        self.key_encoder = (None if momentum is None else MomentumEncoder(
            dict(backbone=self.backbone, projector=self.projector),
            momentum))
        self.patch_size = self.backbone.patch_embed.projection.kernel_size[0]

    def init_weights(self) -> None:
        """MAE's rule on the projector, then mmengine's (every submodule's
        ``init_weights``; a ``Pretrained`` ``init_cfg`` applies after)."""
        if not self.is_init:
            mae_init_(self.projector)
        super().init_weights()

    def branch(self, img: torch.Tensor, mask: torch.Tensor, decoder):
        """One branch on ``img`` (N, 3, H, W) under ``mask`` (N, h, w):
        the normalised contrastive feature (N, feat_dim) and the
        reconstruction loss of its masked patches (None if none is)."""
        latent = self.backbone.encode(img, mask)  # (N, 1 + V, C)
        z = contrastive_feature(latent, self.projector)
        if not bool(mask.any()):
            return z, None
        pred = decoder(latent, mask)  # (N, L, p*p*3)
        target = patch_pixel_targets(img, self.patch_size, self.norm_pix)
        return z, masked_patch_loss(pred, target, mask, self.rec_loss)

    @torch.no_grad()
    def keys(self, imgs: List[torch.Tensor],
             masks: List[torch.Tensor]) -> List[torch.Tensor]:
        """EMA step, then the key encoder's normalised features
        (N, feat_dim) of each branch's view (N, 3, H, W) under its mask
        (N, h, w), in ``BRANCHES`` order."""
        self.key_encoder.update(dict(backbone=self.backbone,
                                     projector=self.projector))
        enc = self.key_encoder
        return [contrastive_feature(enc.backbone.encode(img, mask),
                                    enc.projector)
                for img, mask in zip(imgs, masks)]

    @torch.no_grad()
    def reconstruct(self, img: torch.Tensor, mask: torch.Tensor,
                    branch: str = 'strong') -> torch.Tensor:
        """The ``branch`` decoder's predictions (N, L, p*p*3) for ``img``
        (N, 3, H, W) under ``mask`` (N, h, w)."""
        if branch not in BRANCHES:
            raise ValueError(f'branch must be one of {BRANCHES}, got '
                             f'{branch!r}')
        decoder = getattr(self, f'decoder_{branch}')
        return decoder(self.backbone.encode(img, mask), mask)

    def loss(self, inputs: List[torch.Tensor],
             data_samples=None) -> Dict[str, torch.Tensor]:
        """inputs: [strong view, weak view], each (N, 3, H, W)."""
        if not isinstance(inputs, (list, tuple)) or len(inputs) != 2:
            raise ValueError('MACRL needs [strong view, weak view] per image: '
                             'use MultiView with two pipelines')
        n, device = inputs[0].shape[0], inputs[0].device
        rng = self.mask_random.numpy()
        masks = [self.mask_generators[b].batch(n, rng=rng, device=device)
                 for b in BRANCHES]
        z_s, rec_s = self.branch(inputs[0], masks[0], self.decoder_strong)
        z_w, rec_w = self.branch(inputs[1], masks[1], self.decoder_weak)
        if self.key_encoder is not None:
            k_s, k_w = self.keys(inputs, masks)
        elif self.detach_positive:
            k_s, k_w = z_s.detach(), z_w.detach()
        else:
            k_s, k_w = z_s, z_w
        loss_con = 0.5 * (
            info_nce(z_s, k_w, self.queue_weak.negatives(),
                     self.temperature) +
            info_nce(z_w, k_s, self.queue_strong.negatives(),
                     self.temperature))
        self.queue_strong.enqueue(k_s.detach())
        self.queue_weak.enqueue(k_w.detach())
        recs = [r for r in (rec_s, rec_w) if r is not None]
        loss_rec = (torch.stack(recs).mean() if recs
                    else loss_con.new_zeros(()))
        return dict(loss_con=loss_con, loss_rec=self.lambda_rec * loss_rec)
