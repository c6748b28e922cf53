"""Frozen pretrained networks inside a model (e.g. the saliency encoder),
loaded through mmengine's checkpoint loader."""
import os.path as osp
import re

import torch.nn as nn
from mmengine.runner import CheckpointLoader, load_state_dict

from mmmask.registry import MODELS

#: mmengine's ``revise_keys`` of ``load_checkpoint``: DataParallel's prefix
_REVISE_KEYS = [(r'^module\.', '')]


def backbone_state(checkpoint: dict, prefix: str = 'backbone.') -> dict:
    """The tensors of a checkpoint as one backbone sees them.

    ``checkpoint``: a loaded file: mmmask / mmpretrain (``state_dict``
    nesting, keys ``backbone.*`` among others) or a bare state dict
    (torchvision). Keys are revised as mmengine's ``load_checkpoint`` does
    (``module.`` dropped); then, when any key starts with ``prefix``, only
    those keys are kept, without it (mmengine's ``Pretrained`` init with
    ``prefix``); otherwise the keys stay as they are.
    """
    state = checkpoint.get('state_dict', checkpoint)
    for pattern, repl in _REVISE_KEYS:
        state = {re.sub(pattern, repl, k): v for k, v in state.items()}
    if any(k.startswith(prefix) for k in state):
        state = {k[len(prefix):]: v for k, v in state.items()
                 if k.startswith(prefix)}
    return state


def build_frozen(cfg: dict, checkpoint: str, what: str = 'pretrained',
                 hint: str = '') -> nn.Module:
    """Build ``cfg`` from ``MODELS`` and load the local file ``checkpoint``
    into it (:func:`backbone_state`), frozen: eval mode, no gradients.

    Every tensor of the network must be in the file with its shape: a
    ``FileNotFoundError`` for a missing file and a ``KeyError`` naming the
    first missing or mis-shaped tensors otherwise (checked on every rank
    before loading). ``what`` names the network in the errors; ``hint`` is
    appended to the missing-file error.
    """
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'{what} checkpoint not found: {checkpoint}'
                                + (f' ({hint})' if hint else ''))
    net = MODELS.build(cfg)
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state = backbone_state(ckpt)
    own = net.state_dict()
    missing = [k for k in own if k not in state
               and not k.endswith('num_batches_tracked')]
    wrong = [k for k in own if k in state and state[k].shape != own[k].shape]
    if missing or wrong:
        raise KeyError(f'{what} checkpoint {checkpoint} lacks {len(missing)} '
                       f'tensors of the {what} backbone and has {len(wrong)} '
                       f'of other shapes (e.g. {(missing + wrong)[:3]}); is '
                       'it the right architecture?')
    # the file's other tensors (a classifier, necks) are not the network's
    load_state_dict(net, {k: state[k] for k in own if k in state},
                    strict=True)
    net.requires_grad_(False)
    net.eval()  # (some backbones' train() returns None, not the module)
    return net
