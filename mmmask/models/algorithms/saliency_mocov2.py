"""Saliency-guided masking on MoCo v2: `Masking Improves Contrastive
Self-Supervised Learning for ConvNets, and Saliency Tells You Where
<https://arxiv.org/abs/2309.12757>`_ (Chin et al., WACV 2024)."""
import copy
import warnings
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F

from mmmask.registry import MASK_GENERATORS, MODELS
from ..mask_generators import build_fill
from ..utils import StepRandom, build_frozen, find_layer, layer_output
from .mocov2 import MoCoV2

_BLUR = dict(type='BlurFill', kernel_size=31, sigma=10.0)
_GRID_ONLY = dict(focal_prob=0.0, channel_prob=0.0, max_fg_ratio=1.0)

#: The authors' three masking strategies (``--strategy hp | blur | mean``):
#: the query generator, the fill (its ``transform_view`` on every view), the
#: hard-negative generator and its fill. ``hp`` masks as the paper
#: describes (focal / channel-wise / spatial, foreground share capped at
#: 0.55, both views high-pass filtered); ``blur`` and ``mean`` are the
#: authors' simpler variants: spatial grid masks only, no focal mask, no
#: cap, unfiltered views, cells copied from the Gaussian-blurred view
#: (k 31, sigma 10) or set to the view's channel mean, in the query and in
#: the hard negative alike.
SALIENCY_STRATEGIES = dict(
    hp=dict(
        query_mask=dict(type='SaliencyGridMaskGenerator',
                        ratio_range=(0.05, 0.25), max_fg_ratio=0.55,
                        focal_prob=0.2, focal_size=200, channel_prob=0.7),
        fill=dict(type='HighPassNoiseFill', std=0.18, kernel_size=11,
                  sigma=5.0),
        hard_negative_mask=dict(type='ForegroundMaskGenerator',
                                ratio_range=(0.4, 0.7), max_fg_ratio=0.55,
                                focal_prob=0.2, focal_size=130,
                                channel_prob=0.7),
        hard_negative_fill=dict(type='NoiseFill', std=0.14)),
    blur=dict(
        query_mask=dict(type='SaliencyGridMaskGenerator',
                        ratio_range=(0.05, 0.25), **_GRID_ONLY),
        fill=_BLUR,
        hard_negative_mask=dict(type='ForegroundMaskGenerator',
                                ratio_range=(0.4, 0.7), **_GRID_ONLY),
        hard_negative_fill=_BLUR),
    mean=dict(
        query_mask=dict(type='SaliencyGridMaskGenerator',
                        ratio_range=(0.05, 0.25), **_GRID_ONLY),
        fill=dict(type='MeanFill', mode='image'),
        hard_negative_mask=dict(type='ForegroundMaskGenerator',
                                ratio_range=(0.4, 0.7), **_GRID_ONLY),
        hard_negative_fill=dict(type='MeanFill', mode='image')))


def _merge_part(preset: dict, given: Optional[dict]) -> dict:
    """A part of the strategy with the config's changes: None keeps the
    strategy's; a dict of the same ``type`` (or none) updates it key by key
    (e.g. ``dict(base_size=64)``); another ``type`` replaces it."""
    if given is None:
        return preset
    given = dict(given)
    if given.get('type', preset['type']) != preset['type']:
        return given
    return {**preset, **given}


@MODELS.register_module()
class SaliencyMoCoV2(MoCoV2):
    """MoCo v2 with saliency-guided masking of the query and a hard negative.

    For a batch of two views (N, 3, H, W), normalised:

    1. saliency: the channel sum of a frozen encoder's C5 map (or the
       ``saliency_layer``'s), on a ``g x g`` grid (the frozen
       ``saliency_backbone`` loaded from ``saliency_checkpoint``, or the
       current key encoder when none);
    2. every view goes through ``fill.transform_view`` (``hp``: the
       high-pass ``x - GaussBlur(x; k 11, sigma 5)``; identity otherwise);
       the query view is then masked by ``query_mask``
       (``SaliencyGridMaskGenerator``) and filled by ``fill`` (``hp``:
       Gaussian noise std 0.18 pasted into the filtered view); the key view
       is not masked;
    3. q, k and the MoCo queue as in MoCo v2;
    4. hard negative: the (filtered) key view with its foreground masked
       (``hard_negative_mask``, filled by ``hard_negative_fill``), through
       the key encoder: ``k_hn``; its similarity ``alpha * q . k_hn`` joins
       the negatives (divided by tau in the head; paper: alpha = 2).

    ``loss_global`` = InfoNCE(q, k; queue + the hard negative).

    Masks and noise fields come from the ``StepRandom('saliency_masks')``
    stream: different on every rank, the same again after a resume.

    Args:
        backbone, neck, head, queue_len, feat_dim, momentum, key_bn: MoCo v2.
        strategy (str): ``'hp'`` (default), ``'blur'`` or ``'mean'``: the
            authors' masking strategies, which set the four parts below
            together (:data:`SALIENCY_STRATEGIES`).
        query_mask (dict, optional): query-view generator
            (``MASK_GENERATORS``).
        fill (dict, optional): query fill, its ``transform_view`` applied to
            every view first.
        hard_negative_mask (dict, optional): hard-negative generator
            (``ForegroundMaskGenerator``).
        hard_negative_fill (dict, optional): its fill.
            Each of these four: None keeps the strategy's part; a dict of
            the same type (or without one) changes its arguments (e.g.
            ``query_mask=dict(base_size=64)``); another type replaces it.
        hard_negative (bool): False leaves the hard negative out (plain MoCo
            v2 on the masked query).
        alpha (float): hard-negative similarity scale (2.0).
        saliency_backbone (dict, optional): frozen saliency encoder config
            (a ResNet-50 in the paper); needs ``saliency_checkpoint``.
        saliency_checkpoint (str, optional): local weights for it
            (mmpretrain / mmmask or torchvision layout).
        grid_size (int): g of the saliency map (7); must match the
            generators' grid.
        saliency_layer (str, optional): the module of the saliency network
            whose output map gives the saliency (None: its last output, C5,
            as in the paper). A map coarser than the grid carries no
            position (at 32 px a ResNet's C5 is 1 x 1: every cell would be
            foreground and the hard negative a randomly masked copy of the
            positive): then name an earlier stage, e.g. ``'layer1'`` (C2,
            8 x 8 at 32 px). The forward stops at that layer.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 strategy: str = 'hp',
                 query_mask: Optional[dict] = None,
                 fill: Optional[dict] = None,
                 hard_negative_mask: Optional[dict] = None,
                 hard_negative_fill: Optional[dict] = None,
                 hard_negative: bool = True,
                 alpha: float = 2.0,
                 saliency_backbone: Optional[dict] = None,
                 saliency_checkpoint: Optional[str] = None,
                 grid_size: int = 7,
                 saliency_layer: Optional[str] = None,
                 queue_len: int = 65536,
                 feat_dim: int = 128, momentum: float = 0.999,
                 key_bn: str = 'shuffle', data_preprocessor=None,
                 init_cfg=None) -> None:
        super().__init__(backbone, neck, head, queue_len, feat_dim, momentum,
                         key_bn, data_preprocessor, init_cfg)
        if strategy not in SALIENCY_STRATEGIES:
            raise ValueError(f'strategy must be one of '
                             f'{tuple(SALIENCY_STRATEGIES)}, got {strategy!r}')
        self.strategy = strategy
        preset = copy.deepcopy(SALIENCY_STRATEGIES[strategy])
        parts = dict(query_mask=query_mask, fill=fill,
                     hard_negative_mask=hard_negative_mask,
                     hard_negative_fill=hard_negative_fill)
        parts = {k: _merge_part(preset[k], v) for k, v in parts.items()}
        self.query_mask = MASK_GENERATORS.build(parts['query_mask'])
        self.fill = build_fill(parts['fill'])
        self.hard_negative_mask = (MASK_GENERATORS.build(
            parts['hard_negative_mask']) if hard_negative else None)
        self.hard_negative_fill = build_fill(parts['hard_negative_fill'])
        self.alpha = float(alpha)
        self.grid_size = int(grid_size)
        for name, gen in (('query_mask', self.query_mask),
                          ('hard_negative_mask', self.hard_negative_mask)):
            g = getattr(gen, 'grid_size', self.grid_size)
            if gen is not None and g != self.grid_size:
                raise ValueError(f'{name} has grid_size={g} but the saliency '
                                 f'map is {self.grid_size} x {self.grid_size}')
        if (saliency_backbone is None) != (saliency_checkpoint is None):
            raise ValueError('saliency_backbone and saliency_checkpoint go '
                             'together (both None: the key encoder gives the '
                             'saliency)')
        self.saliency_net = (None if saliency_backbone is None else
                             build_frozen(
                                 saliency_backbone, saliency_checkpoint,
                                 what='saliency',
                                 hint='weights are never downloaded; give a '
                                 'local file or saliency_checkpoint=None to '
                                 'use the key encoder'))
        self.saliency_layer = saliency_layer
        if saliency_layer is not None:
            find_layer(self.backbone if self.saliency_net is None
                       else self.saliency_net, saliency_layer,
                       'saliency_layer')
        self._warned_coarse = False
        self._random = StepRandom('saliency_masks')

    def train(self, mode: bool = True):
        super().train(mode)
        if self.saliency_net is not None:
            self.saliency_net.eval()  # frozen: BN statistics stay
        return self

    @torch.no_grad()
    def saliency_maps(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, g, g): channel sum of the C5 (or
        ``saliency_layer``) map, resized to the grid (area average, or
        nearest when the map is smaller, with a warning: it then carries
        less position than the grid)."""
        net = (self.saliency_net if self.saliency_net is not None
               else self.key_encoder.backbone)
        feat = layer_output(net, images, self.saliency_layer,
                            'saliency_layer')
        sal = feat.sum(dim=1, keepdim=True)  # (N, 1, h, w)
        g = self.grid_size
        if min(sal.shape[-2:]) < g and not self._warned_coarse:
            self._warned_coarse = True
            warnings.warn(
                f'SaliencyMoCoV2: the saliency map is {tuple(sal.shape[-2:])}'
                f' for {tuple(images.shape[-2:])} views, coarser than the '
                f'{g} x {g} grid' + (
                    ' (1 x 1: every cell is foreground, the masks ignore the '
                    'image)' if sal.shape[-2:].numel() == 1 else '') +
                '; set saliency_layer to an earlier stage (e.g. '
                "'layer1') or use larger views")
        if sal.shape[-2] >= g and sal.shape[-1] >= g:
            sal = F.adaptive_avg_pool2d(sal, g)
        else:
            sal = F.interpolate(sal, size=(g, g), mode='nearest')
        return sal[:, 0].float()

    def _draw(self, generator, saliency: torch.Tensor, shape, rng,
              device) -> torch.Tensor:
        """One mask per image -> (N, C, H, W) bool."""
        maps = saliency.cpu().numpy()
        masks = [generator(rng, saliency=s, image_size=shape)['mask']
                 for s in maps]
        return torch.from_numpy(np.stack(masks)).to(device)

    def prepare_views(self, im_q: torch.Tensor,
                      im_k: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The views as the encoders see them (normalised, (N, 3, H, W)):
        ``query`` (filtered, then masked), ``key`` (filtered) and, with a
        hard negative, ``hard_negative`` (the filtered key, then masked);
        plus the masks ``query_mask`` / ``hard_negative_mask`` (N, 3, H, W)
        bool. Masks (numpy) and noise (torch) come from this iteration's
        ``saliency_masks`` stream of this rank."""
        rng = self._random.numpy()
        noise = self._random.torch()
        shape = tuple(im_q.shape[-2:])
        n = im_q.shape[0]
        hard = self.hard_negative_mask is not None
        # both views' saliency in one forward when both are needed
        sal = self.saliency_maps(torch.cat([im_q, im_k]) if hard else im_q)
        q_mask = self._draw(self.query_mask, sal[:n], shape, rng, im_q.device)
        # the authors' order: filter the view, then paste the fill
        key = self.fill.transform_view(im_k)
        views = dict(query=self.fill(self.fill.transform_view(im_q), q_mask,
                                     noise),
                     key=key, query_mask=q_mask)
        if hard:
            hn_mask = self._draw(self.hard_negative_mask, sal[n:], shape, rng,
                                 im_k.device)
            views['hard_negative'] = self.hard_negative_fill(key, hn_mask,
                                                             noise)
            views['hard_negative_mask'] = hn_mask
        return views

    def loss(self, inputs: List[torch.Tensor],
             data_samples=None) -> Dict[str, torch.Tensor]:
        """inputs: two views, each (N, 3, H, W)."""
        views = self.prepare_views(*self.split_views(inputs))
        q = F.normalize(self.neck(self.backbone(views['query']))[0], dim=1)
        _, (k, ) = self.encode_keys(views['key'])
        k = F.normalize(k, dim=1)  # (N, C)
        extra = None
        if 'hard_negative' in views:
            _, (k_hn, ) = self.key_forward(views['hard_negative'])
            k_hn = F.normalize(k_hn, dim=1)  # (N, C)
            # the hard negative's similarity alpha * q . k_hn  (N, 1)
            extra = self.alpha * (q * k_hn).sum(1, keepdim=True)
        loss = self.head.loss(q, k, self.queue.negatives(), extra)
        self.queue.enqueue(k)
        return dict(loss_global=loss)
