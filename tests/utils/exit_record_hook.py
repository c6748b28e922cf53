"""Test hook ``ExitRecordHook`` (tests/test_engine/test_dist_end.py)."""
import atexit
import json
import os.path as osp
import time

import torch.distributed as dist
from mmengine.hooks import Hook

from mmmask.registry import HOOKS


@HOOKS.register_module()
class ExitRecordHook(Hook):
    """Rank 0 saves its checkpoints ``slow_save_s`` seconds slowly; every
    rank writes when it left the interpreter and whether its process group
    was still open."""

    def __init__(self, slow_save_s):
        self.slow_save_s = slow_save_s

    def after_run(self, runner):
        # registered last, so it runs first at interpreter exit (atexit
        # handlers run last-in first-out): the moment the rank leaves
        rank, work_dir = runner.rank, runner.work_dir

        def record():
            with open(osp.join(work_dir, f'exit_rank{rank}.json'), 'w') as f:
                json.dump(dict(time=time.time(),
                               group_open=dist.is_initialized()), f)

        atexit.register(record)

    def before_save_checkpoint(self, runner, checkpoint):
        if runner.rank == 0:
            time.sleep(self.slow_save_s)
