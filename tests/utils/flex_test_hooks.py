"""Test hooks of tests/test_engine/test_flexible_runner.py."""
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.runner import set_random_seed

from mmmask.registry import HOOKS


@HOOKS.register_module()
class ReseedHook(Hook):
    """Same generator states in every runner type when training starts."""
    priority = 'HIGHEST'

    def before_train(self, runner):
        set_random_seed(7, deterministic=True)


@HOOKS.register_module()
class DumpStateHook(Hook):
    """Each rank saves its key encoder, queues and wrapper type."""

    def after_train(self, runner):
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        for q in (model.queue, model.dense_queue):
            q.flush()
        out = {k: v.detach().clone() for k, v in
               model.key_encoder.state_dict().items()}
        for name in ('queue', 'dense_queue'):
            q = getattr(model, name)
            out[name + '.feats'] = q.feats.clone()
            out[name + '.ptr'] = q.ptr.clone()
        out['wrapper'] = type(runner.model).__name__
        out['world_size'] = get_world_size()
        torch.save(out, osp.join(runner.work_dir, f'rank{get_rank()}.pt'))
