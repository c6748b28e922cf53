"""Saliency-guided masking on MoCo v2: `Masking Improves Contrastive
Self-Supervised Learning for ConvNets, and Saliency Tells You Where
<https://arxiv.org/abs/2309.12757>`_ (Chin et al., WACV 2024)."""
import os.path as osp
import re
import warnings
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from mmmask.registry import MASK_GENERATORS, MODELS
from ..mask_generators import as_generator, build_fill
from .mocov2 import MoCoV2


def load_frozen_backbone(cfg: dict, checkpoint: str) -> nn.Module:
    """Build ``cfg`` and load ``checkpoint`` into it, frozen (eval mode, no
    gradients). Accepts mmmask/mmpretrain checkpoints (``backbone.`` keys,
    ``state_dict`` nesting) and torchvision ResNet state dicts. Every
    backbone tensor must be in the file (a clear error otherwise)."""
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'saliency checkpoint not found: {checkpoint}'
                                ' (weights are never downloaded; give a local '
                                'file or saliency_checkpoint=None to use the '
                                'key encoder)')
    from mmengine.runner import CheckpointLoader  # the process's loader
    net = MODELS.build(cfg)
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if any(k.startswith('backbone.') for k in state):
        state = {k[len('backbone.'):]: v for k, v in state.items()
                 if k.startswith('backbone.')}
    state = {re.sub(r'^module\.', '', k): v for k, v in state.items()}
    own = net.state_dict()
    missing = [k for k in own if k not in state
               and not k.endswith('num_batches_tracked')]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or wrong:
        raise KeyError(f'saliency checkpoint {checkpoint} lacks '
                       f'{len(missing)} tensors of the saliency backbone and '
                       f'has {len(wrong)} of other shapes (e.g. '
                       f'{(missing + wrong)[:3]}); is it the right '
                       'architecture?')
    net.load_state_dict({k: state[k] for k in own if k in state},
                        strict=False)
    net.requires_grad_(False)
    net.eval()  # (some backbones' train() returns None, not the module)
    return net


class _StopForward(Exception):
    """Raised by a forward hook to end a forward pass at a layer."""


def layer_output(net: nn.Module, x: torch.Tensor,
                 layer: Optional[str]) -> torch.Tensor:
    """The output of ``net``'s submodule ``layer`` for input ``x``; the
    forward stops there (later layers cost nothing). ``layer=None``: the
    last of ``net(x)``'s outputs."""
    if layer is None:
        return net(x)[-1]
    module = find_layer(net, layer)
    out = []

    def hook(mod, args, output):
        out.append(output)
        raise _StopForward

    handle = module.register_forward_hook(hook)
    try:
        net(x)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not out:
        raise RuntimeError(f'saliency_layer {layer!r} of '
                           f'{type(net).__name__} was not run by its forward')
    return out[0]


def find_layer(net: nn.Module, layer: str) -> nn.Module:
    """``net``'s submodule named ``layer`` (a clear error if none is)."""
    modules = dict(net.named_modules())
    if layer not in modules:
        top = [n for n, _ in net.named_children()]
        raise KeyError(f'saliency_layer {layer!r} is not a module of '
                       f'{type(net).__name__} (its top-level modules: {top})')
    return modules[layer]


@MODELS.register_module()
class SaliencyMoCoV2(MoCoV2):
    """MoCo v2 with saliency-guided masking of the query and a hard negative.

    For a batch of two views (N, 3, H, W), normalised:

    1. saliency: the channel sum of a frozen encoder's C5 map (or the
       ``saliency_layer``'s), on a ``g x g`` grid (the frozen
       ``saliency_backbone`` loaded from ``saliency_checkpoint``, or the
       current key encoder when none);
    2. the query view is masked by ``query_mask``
       (``SaliencyGridMaskGenerator``: focal / spatial / channel-wise grid
       masks spread over foreground and background) and filled by ``fill``
       (``hp``: Gaussian noise, then every view high-pass filtered);
       the key view is not masked;
    3. q, k and the MoCo queue as in MoCo v2;
    4. hard negative: the key view with its foreground masked
       (``hard_negative_mask``, filled by ``hard_negative_fill``), through
       the key encoder: ``k_hn``; its logit ``alpha * q . k_hn / tau`` is
       appended to the negatives (paper: alpha = 2).

    ``loss_global`` = InfoNCE(q, k; queue + the hard negative).

    Args:
        backbone, neck, head, queue_len, feat_dim, momentum, key_bn: MoCo v2.
        query_mask (dict): query-view generator (``MASK_GENERATORS``).
        fill (dict): query fill, its ``transform_view`` applied to every view
            (``HighPassNoiseFill`` std 0.18, k 11, sigma 5; or ``BlurFill``,
            ``MeanFill``).
        hard_negative_mask (dict, optional): hard-negative generator
            (``ForegroundMaskGenerator``); None disables the hard negative.
        hard_negative_fill (dict): its fill (``NoiseFill`` std 0.14).
        alpha (float): hard-negative logit scale (2.0).
        saliency_backbone (dict, optional): frozen saliency encoder config
            (a ResNet-50 in the paper); needs ``saliency_checkpoint``.
        saliency_checkpoint (str, optional): local weights for it.
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
                 query_mask: dict = dict(type='SaliencyGridMaskGenerator'),
                 fill: dict = dict(type='HighPassNoiseFill'),
                 hard_negative_mask: Optional[dict] = dict(
                     type='ForegroundMaskGenerator'),
                 hard_negative_fill: dict = dict(type='NoiseFill', std=0.14),
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
        self.query_mask = MASK_GENERATORS.build(query_mask)
        self.fill = build_fill(fill)
        self.hard_negative_mask = (None if hard_negative_mask is None else
                                   MASK_GENERATORS.build(hard_negative_mask))
        self.hard_negative_fill = build_fill(hard_negative_fill)
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
                             load_frozen_backbone(saliency_backbone,
                                                  saliency_checkpoint))
        self.saliency_layer = saliency_layer
        if saliency_layer is not None:
            find_layer(self.backbone if self.saliency_net is None
                       else self.saliency_net, saliency_layer)
        self._warned_coarse = False

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
        feat = layer_output(net, images, self.saliency_layer)
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
        ``query`` (masked, filtered), ``key`` (filtered) and, with a
        hard-negative generator, ``hard_negative``; plus the masks
        ``query_mask`` / ``hard_negative_mask`` (N, 3, H, W) bool."""
        rng = as_generator(None)  # numpy's global state: seeded by runner
        shape = tuple(im_q.shape[-2:])
        n = im_q.shape[0]
        hard = self.hard_negative_mask is not None
        # both views' saliency in one forward when both are needed
        sal = self.saliency_maps(torch.cat([im_q, im_k]) if hard else im_q)
        q_mask = self._draw(self.query_mask, sal[:n], shape, rng, im_q.device)
        views = dict(query=self.fill.transform_view(self.fill(im_q, q_mask)),
                     key=self.fill.transform_view(im_k), query_mask=q_mask)
        if hard:
            hn_mask = self._draw(self.hard_negative_mask, sal[n:], shape, rng,
                                 im_k.device)
            views['hard_negative'] = self.fill.transform_view(
                self.hard_negative_fill(im_k, hn_mask))
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
            # the hard negative's logit: alpha * q . k_hn / tau  (N, 1)
            extra = self.alpha * (q * k_hn).sum(1, keepdim=True) / \
                self.head.temperature
        loss = self.head.loss(q, k, self.queue.negatives(), extra)
        self.queue.enqueue(k)
        return dict(loss_global=loss)
