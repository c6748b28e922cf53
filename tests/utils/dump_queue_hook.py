"""Test hook ``DumpQueueHook``: each rank saves its queues, queue pointers
and parameter sums (tests/test_apis/test_train_tools.py, test_multinode.py)."""
import os.path as osp

import torch
from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmmask.registry import HOOKS


@HOOKS.register_module()
class DumpQueueHook(Hook):
    """Saves this rank's queues, queue pointers and parameter sums."""

    def __init__(self):
        self.ptrs = []

    def _model(self, runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        queue = self._model(runner).queue
        if hasattr(queue, 'flush'):  # keys may be held until after backward
            queue.flush()
        self.ptrs.append(int(queue.ptr))

    def after_train(self, runner):
        model = self._model(runner)
        out = {k: v.detach().clone() for k, v in model.state_dict().items()
               if k.split('.')[0] in ('queue', 'dense_queue')}
        out['ptrs'] = self.ptrs
        out['world_size'] = get_world_size()
        out['wrapped'] = type(runner.model).__name__
        out['param_sums'] = {k: float(p.detach().double().sum())
                             for k, p in model.named_parameters()}
        out['key_param_sums'] = {
            k: float(p.detach().double().sum())
            for k, p in model.key_encoder.named_parameters()}
        torch.save(out, osp.join(runner.work_dir,
                                 f'queue_rank{get_rank()}.pt'))
