"""A distributed run ends together: every rank waits for the last checkpoint,
then the process group is closed."""
import torch.distributed as dist
from mmengine.hooks import Hook

from mmmask.registry import HOOKS

__all__ = ['DistributedEndHook', 'close_distributed']


def close_distributed(barrier: bool = True) -> bool:
    """Meet the other ranks (``barrier``) and close the default process
    group; nothing without one. Returns whether a group was closed.

    Without it a rank that finished its last step exits while rank 0 is
    still writing the final checkpoint; a rank that exits with its gloo /
    NCCL group still open can abort at interpreter exit (``terminate called
    without an active exception``, SIGABRT), and torchrun then kills rank 0
    mid-write.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return False
    if barrier and dist.get_world_size() > 1:
        dist.barrier()
    dist.destroy_process_group()
    return True


@HOOKS.register_module()
class DistributedEndHook(Hook):
    """At the end of a distributed run (``after_run``), every rank waits at a
    barrier until all ranks are there, then the process group is closed.

    ``Runner.train()`` calls ``after_run`` after the train loop has
    finished, i.e. after ``CheckpointHook`` wrote the last checkpoint (in
    ``after_train_iter`` / ``after_train_epoch``, on rank 0 only, through
    ``SafeCheckpointHook``'s atomic write): no rank leaves before that file
    is complete on disk. Priority ``LOWEST`` runs it after every other
    hook's ``after_run`` (loggers, visualizers), so nothing uses the group
    afterwards. A single-process run is left alone.

    Args:
        destroy_process_group (bool): close the default process group after
            the barrier (what a launcher should do before its processes
            exit). False keeps it open for code that runs collectives after
            ``runner.train()``. Defaults to True.
    """

    priority = 'LOWEST'

    def __init__(self, destroy_process_group: bool = True) -> None:
        self.destroy_process_group = destroy_process_group

    def after_run(self, runner) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            return
        if self.destroy_process_group:
            close_distributed(barrier=True)
        elif dist.get_world_size() > 1:
            dist.barrier()
