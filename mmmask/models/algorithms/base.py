"""Base classes of mmmask's self-supervised algorithms."""
import warnings
from abc import ABCMeta, abstractmethod
from typing import Dict, List, Optional, Union

import torch
import torch.nn as nn
import torch.distributed as torch_dist
from mmengine.model import BaseModel, revert_sync_batchnorm

from mmmask.registry import MODELS
from ..utils import MomentumEncoder, batch_shuffle, batch_unshuffle

KEY_BN_MODES = ('shuffle', 'sync', 'none')


def _has_sync_bn(module: nn.Module) -> bool:
    return any(isinstance(m, nn.SyncBatchNorm) for m in module.modules())


def fallback_sync_bn(module: nn.Module, name: str) -> nn.Module:
    """SyncBN needs a process group and CUDA tensors: without them, use BN.

    Returns ``module`` itself, or a copy with every SyncBatchNorm replaced by
    BatchNorm (with a warning).
    """
    if not _has_sync_bn(module):
        return module
    if torch_dist.is_available() and torch_dist.is_initialized() \
            and torch.cuda.is_available():
        return module
    warnings.warn(f'{name}: SyncBN needs a distributed run on CUDA devices; '
                  'this run has none, so SyncBN falls back to BatchNorm.')
    return revert_sync_batchnorm(module)


class BaseSelfSupAlgorithm(BaseModel, metaclass=ABCMeta):
    """Backbone (+ neck, + head) built from mmmask's MODELS registry.

    ``forward(inputs, data_samples, mode)``: ``'loss'`` -> :meth:`loss`
    (a dict of named loss terms), ``'tensor'`` -> :meth:`extract_feat`
    (backbone features). Normalisation belongs to the ``data_preprocessor``
    (default mmpretrain's ``SelfSupDataPreprocessor``).

    Args:
        backbone (dict): backbone config.
        neck (dict, optional): neck config.
        head (dict, optional): head config.
        data_preprocessor (dict, optional): preprocessor config.
        init_cfg (dict | list[dict], optional): weight initialisation.
    """

    def __init__(self, backbone: dict, neck: Optional[dict] = None,
                 head: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        data_preprocessor = dict(data_preprocessor or {})
        data_preprocessor.setdefault('type', 'SelfSupDataPreprocessor')
        super().__init__(data_preprocessor=MODELS.build(data_preprocessor),
                         init_cfg=init_cfg)
        name = type(self).__name__
        self.backbone = fallback_sync_bn(MODELS.build(backbone),
                                         f'{name}.backbone')
        if neck is not None:
            self.neck = fallback_sync_bn(MODELS.build(neck), f'{name}.neck')
        if head is not None:
            self.head = MODELS.build(head)

    def forward(self, inputs: Union[torch.Tensor, List[torch.Tensor]],
                data_samples: Optional[list] = None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(f'{type(self).__name__} supports the modes "loss" '
                           f'and "tensor", got "{mode}"')

    def extract_feat(self, inputs: torch.Tensor):
        """Backbone features of a batch (N, 3, H, W) (what transfers)."""
        return self.backbone(inputs)

    @abstractmethod
    def loss(self, inputs, data_samples) -> Dict[str, torch.Tensor]:
        """A dict of named loss terms for a batch (each method's math)."""


class BaseMomentumContrast(BaseSelfSupAlgorithm):
    """Online encoder (backbone + neck) and its momentum key encoder.

    Args:
        momentum (float): m of ``theta_k <- m theta_k + (1 - m) theta_q``
            (0.999 in MoCo v2 / DenseCL; mmpretrain writes 1 - m = 0.001).
        key_bn (str): how the key encoder's BN sees the batch under DDP:
            ``'shuffle'`` (MoCo's shuffle BN, default), ``'sync'`` (SyncBN in
            the key encoder; falls back to BN without CUDA DDP) or ``'none'``.
    """

    def __init__(self, backbone: dict, neck: dict, head: dict,
                 momentum: float = 0.999, key_bn: str = 'shuffle',
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(backbone, neck, head, data_preprocessor, init_cfg)
        if key_bn not in KEY_BN_MODES:
            raise ValueError(f'key_bn must be one of {KEY_BN_MODES}, '
                             f'got {key_bn!r}')
        self.key_bn = key_bn
        self.key_encoder = MomentumEncoder(
            dict(backbone=self.backbone, neck=self.neck), momentum)
        if key_bn == 'sync':
            self.key_encoder = fallback_sync_bn(
                nn.SyncBatchNorm.convert_sync_batchnorm(self.key_encoder),
                f'{type(self).__name__}.key_encoder')

    @torch.no_grad()
    def encode_keys(self, im_k: torch.Tensor):
        """EMA-update the key encoder, then run it on ``im_k`` (N, 3, H, W).

        Returns ``(backbone outputs, neck outputs)`` of the key encoder, each
        row back in this rank's sample order.
        """
        self.key_encoder.update(dict(backbone=self.backbone, neck=self.neck))
        return self.key_forward(im_k)

    @torch.no_grad()
    def key_forward(self, im_k: torch.Tensor, with_neck: bool = True):
        """Run the key encoder (no EMA update) on ``im_k`` (N, 3, H, W),
        with shuffle BN when ``key_bn='shuffle'``.

        Returns ``(backbone outputs, neck outputs or None)``, rows in this
        rank's sample order.
        """
        shuffle = self.key_bn == 'shuffle'
        if shuffle:
            im_k, inverse = batch_shuffle(im_k)
        feats = self.key_encoder.backbone(im_k)
        outs = self.key_encoder.neck(feats) if with_neck else None
        if shuffle:
            feats = tuple(batch_unshuffle(f, inverse) for f in feats)
            if outs is not None:
                outs = tuple(batch_unshuffle(o, inverse) for o in outs)
        return feats, outs

    @staticmethod
    def split_views(inputs) -> tuple:
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError('momentum-contrast methods need two views per '
                             'image: use a multi-view transform that makes '
                             '2 views (inputs must be a list of 2 tensors)')
        return inputs[0], inputs[1]
