"""Extract the backbone of an mmmask checkpoint, for OpenMMLab configs or in
the layout of torchvision / timm.

    python tools/model_converters/extract_backbone_weights.py IN OUT
        [--to {openmmlab,torchvision,timm}] [--strip-prefix]

``--to openmmlab`` (default) writes ``{'state_dict': {'backbone.conv1.weight':
...}, 'meta': {...}}``: only the query backbone (``backbone.*``; the key
encoder ``key_encoder.*``, necks, heads and queues are dropped), keys kept
*with* the ``backbone.`` prefix, so the file goes into the same configs as
the full checkpoint: mmdet / mmseg / mmpretrain
``init_cfg=dict(type='Pretrained', checkpoint=OUT, prefix='backbone.')``
(the configs under configs/benchmarks/). ``--strip-prefix`` writes bare
backbone keys instead, for an ``init_cfg`` without ``prefix`` on the
backbone itself.

``--to torchvision`` / ``--to timm`` write a bare state dict that loads into
``torchvision.models.resnet50()`` / ``timm.create_model('resnet50')`` with
``strict=True`` except the classifier (``fc.*``, absent). mmpretrain's
pytorch-style ResNet already uses their names (conv1, bn1, layer1-4 with
conv1-3 / bn1-3 / downsample.0-1) and their stride placement (in the 3x3
conv, ResNet v1.5), so the tensors are copied under the same names; a deep-stem
(``stem.*``, ResNetV1c/V1d) or other backbone is refused.

The input is read with ``torch.load(weights_only=True)`` (mmmask
checkpoints are plain); older mmengine checkpoints are read through mmmask's
allow-list loader when mmmask is importable.
"""
import argparse
import os.path as osp
import sys
from collections import OrderedDict

import torch

PREFIX = 'backbone.'
RESNET_TOP = ('conv1.', 'bn1.', 'layer1.', 'layer2.', 'layer3.', 'layer4.')


def load(path):
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # an mmengine checkpoint with a message hub
        try:
            from mmmask.engine.checkpoint import load_checkpoint_file
        except ImportError:
            raise err from None
        return load_checkpoint_file(path)


def backbone_state(checkpoint) -> 'OrderedDict[str, torch.Tensor]':
    """``backbone.*`` tensors of a checkpoint, prefix stripped."""
    state = checkpoint.get('state_dict', checkpoint) \
        if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise ValueError('not a checkpoint: expected a dict with a '
                         "'state_dict' or a bare state dict")
    out = OrderedDict((k[len(PREFIX):], v) for k, v in state.items()
                      if k.startswith(PREFIX))
    if not out:
        tops = sorted({k.split('.')[0] for k in state})
        raise ValueError(f"no '{PREFIX}*' tensors in the checkpoint (top-"
                         f'level keys: {", ".join(tops[:10])})')
    return out


def to_resnet_layout(backbone: dict, target: str) -> 'OrderedDict':
    """torchvision / timm ResNet keys (the same names as mmpretrain's
    pytorch-style ResNet); refuses other backbones."""
    if any(k.startswith('stem.') for k in backbone):
        raise ValueError(
            f'deep-stem ResNet (stem.*) has no {target} ResNet layout; '
            'export a plain-stem ResNet (mmpretrain ResNet, deep_stem=False)')
    other = sorted({k.split('.')[0] for k in backbone
                    if not k.startswith(RESNET_TOP)})
    if other:
        raise ValueError(f'not a ResNet backbone: unexpected keys under '
                         f'{other}; --to {target} supports ResNets only')
    return OrderedDict(backbone)


def convert(checkpoint, to='openmmlab', strip_prefix=False):
    backbone = backbone_state(checkpoint)
    if to in ('torchvision', 'timm'):
        return to_resnet_layout(backbone, to)
    state = backbone if strip_prefix else OrderedDict(
        (PREFIX + k, v) for k, v in backbone.items())
    meta = checkpoint.get('meta') if isinstance(checkpoint, dict) else None
    return {'state_dict': state,
            'meta': dict(source='mmmask extract_backbone_weights',
                         prefix='' if strip_prefix else PREFIX,
                         **({'epoch': meta.get('epoch'),
                             'iter': meta.get('iter')}
                            if isinstance(meta, dict) else {}))}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('input', help='mmmask checkpoint')
    parser.add_argument('output', help='output file')
    parser.add_argument('--to', default='openmmlab',
                        choices=['openmmlab', 'torchvision', 'timm'])
    parser.add_argument('--strip-prefix', action='store_true',
                        help="openmmlab: keys without 'backbone.'")
    args = parser.parse_args(argv)
    if not osp.isfile(args.input):
        print(f'extract_backbone_weights.py: error: no such file: '
              f'{args.input}', file=sys.stderr)
        return 2
    try:
        out = convert(load(args.input), args.to, args.strip_prefix)
    except ValueError as err:
        print(f'extract_backbone_weights.py: error: {err}', file=sys.stderr)
        return 2
    torch.save(out, args.output)
    n = len(out['state_dict'] if 'state_dict' in out else out)
    print(f'wrote {n} backbone tensors ({args.to} layout) to {args.output}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
