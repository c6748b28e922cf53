"""What the downstream launchers promise (imported by the test programs
they run; it never imports mmmask): a pretrained checkpoint goes through
mmengine's own checkpoint loader and local file backend, as in a stock
mmdet / mmseg checkout, and no mmmask model or dataset is registered."""
import sys

#: :func:`mmengine_stock` of such a process.
STOCK_MMENGINE = dict(loader=True, backend=True, mmmask_parts=False)


def mmengine_stock(path):
    """For the checkpoint ``path``: is the loader mmengine's
    ``load_from_local``, is the file backend mmengine's ``LocalBackend``,
    and is any module of ``mmmask.models`` / ``mmmask.datasets`` loaded?"""
    from mmengine.fileio import LocalBackend, get_file_backend
    from mmengine.runner.checkpoint import CheckpointLoader, load_from_local
    return dict(
        loader=CheckpointLoader._get_checkpoint_loader(path)
        is load_from_local,
        backend=type(get_file_backend(path)) is LocalBackend,
        mmmask_parts=any(m.startswith(('mmmask.models', 'mmmask.datasets'))
                         for m in sys.modules))
