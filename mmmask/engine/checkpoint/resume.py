"""``--resume auto``: the newest checkpoint of a work dir that loads."""
import logging
import os
import os.path as osp
import re
from typing import Callable, List, Optional

from mmengine.logging import print_log

from mmmask.errors import UnsafeCheckpointError
from .io import describe_error, load_checkpoint_file

__all__ = ['checkpoint_candidates', 'find_resumable_checkpoint']

_NUMBERED = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def checkpoint_candidates(work_dir: str) -> List[str]:
    """Checkpoints of ``work_dir``, newest first: the one mmengine's
    ``last_checkpoint`` names (for a moved or copied work dir, the file of
    that name in ``work_dir``), then ``iter_N.pth`` / ``epoch_N.pth`` by
    decreasing N (ties: newer file first), then other ``*.pth`` files by
    modification time."""
    out: List[str] = []
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer) as f:
            last = f.read().strip()
        local = osp.join(work_dir, osp.basename(last))
        if last and osp.abspath(osp.dirname(last)) != osp.abspath(work_dir) \
                and osp.isfile(local):
            last = local  # the work dir was moved or copied
        out += [last] if last else []
    try:
        names = [n for n in os.listdir(work_dir) if n.endswith('.pth')]
    except FileNotFoundError:
        return out

    def key(name):
        match = _NUMBERED.match(name)
        return (match is not None, int(match.group(1)) if match else -1,
                osp.getmtime(osp.join(work_dir, name)))

    seen = {osp.abspath(p) for p in out}
    paths = [osp.join(work_dir, n) for n in sorted(names, key=key, reverse=True)]
    return out + [p for p in paths if osp.abspath(p) not in seen]


def _log_warning(message: str) -> None:
    print_log(message, logger='current', level=logging.WARNING)


def find_resumable_checkpoint(work_dir: str,
                              warn: Callable[[str], None] = _log_warning
                              ) -> Optional[str]:
    """The newest of :func:`checkpoint_candidates` that loads, or None. One
    that cannot be read (truncated by a kill or a full disk, missing, not a
    checkpoint) is skipped with a warning naming it and why; one refused as
    unsafe raises :class:`~mmmask.errors.UnsafeCheckpointError`."""
    for path in checkpoint_candidates(work_dir):
        try:
            checkpoint = load_checkpoint_file(path)
            if not isinstance(checkpoint, dict) or 'meta' not in checkpoint:
                raise ValueError('not an mmengine checkpoint (no "meta")')
        except UnsafeCheckpointError:
            raise
        except Exception as err:  # truncated zip, EOF, missing file, ...
            warn(f'--resume auto: skipping checkpoint {path}, which cannot '
                 f'be loaded ({describe_error(err)}); trying the previous one')
            continue
        return path
    return None
