"""Test-only hook (never imports mmmask): after init_weights, compare the
model's backbone (and C4 shared head) tensors with the checkpoint's."""
import json

import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from stock_check import mmengine_stock


@HOOKS.register_module()
class TransferProbeHook(Hook):
    priority = 'VERY_HIGH'

    def __init__(self, checkpoint, out):
        self.checkpoint, self.out = checkpoint, out

    def before_train(self, runner):
        ckpt = torch.load(self.checkpoint, map_location='cpu',
                          weights_only=True)['state_dict']
        model = getattr(runner.model, 'module', runner.model)
        result = dict(backbone=0, shared_head=0, differ=[],
                      backbone_total=0,
                      stock=mmengine_stock(self.checkpoint))
        for key, value in model.state_dict().items():
            if key.startswith('backbone.'):
                source, kind = key, 'backbone'
            elif '.shared_head.layer4.' in key:
                source = 'backbone.' + key.split('.shared_head.', 1)[1]
                kind = 'shared_head'
            else:
                continue
            if kind == 'backbone':
                result['backbone_total'] += 1
            if source in ckpt and torch.equal(ckpt[source], value):
                result[kind] += 1
            else:
                result['differ'].append(key)
        result['ckpt_layer4'] = sum(k.startswith('backbone.layer4.')
                                    for k in ckpt)
        with open(self.out, 'w') as f:
            json.dump(result, f)
