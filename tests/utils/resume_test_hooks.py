"""Test hook ``KillDuringSaveHook`` (tests/test_engine/test_resume.py)."""
import os
import signal

from mmengine.hooks import Hook

import mmmask.engine.checkpoint.io as ckpt_io
from mmmask.registry import HOOKS


@HOOKS.register_module()
class KillDuringSaveHook(Hook):
    """SIGKILL this process halfway through writing iteration ``at``'s
    checkpoint file."""

    def __init__(self, at):
        self.at = at

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        if runner.iter + 1 == self.at:
            def write_half_then_die(fileobj, data):
                fileobj.write(data[:len(data) // 2])
                fileobj.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            ckpt_io._write_all = write_half_then_die
