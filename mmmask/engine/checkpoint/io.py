"""Reading checkpoints safely on torch >= 2.6 (mmengine's hold HistoryBuffer
objects, pickled as ``getattr(HistoryBuffer, 'min')``, ..., and numpy values,
which :func:`load_checkpoint_file` allows and nothing else), finding the one
``--resume auto`` takes, writing them atomically."""
import contextlib
import os
import os.path as osp
import pickle
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any, Callable, List, Optional, Union

import numpy as np
import torch
from mmengine.fileio import LocalBackend, register_backend
from mmengine.logging import HistoryBuffer
from mmengine.runner import CheckpointLoader
from mmengine.utils import mkdir_or_exist

from mmmask.errors import CheckpointError, UnsafeCheckpointError

try:  # numpy >= 2 keeps the C module in numpy._core
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy < 1.26
    from numpy.core import multiarray as _np_multiarray

#: numpy dtype codes allowed in a checkpoint: bool, integers, floats and
#: complex numbers (no object, string, void or datetime dtypes).
_NUMERIC_DTYPE_CODES = '?bBhHiIlLqQefdgFDG'
_NUMBERED = re.compile(r'^(?:iter|epoch)_(\d+)\.pth$')


def _history_buffer_getattr(obj: Any, name: str) -> Any:
    """``builtins.getattr`` while loading, serving HistoryBuffer's statistics
    methods only (the real one reaches any attribute of an allowed object)."""
    if obj is HistoryBuffer and isinstance(name, str) and callable(
            HistoryBuffer.__dict__.get(name)) and name in (
                {'min', 'max', 'current', 'mean'}
                | set(HistoryBuffer._statistics_methods)):
        return getattr(HistoryBuffer, name)
    owner = getattr(obj, '__qualname__', type(obj).__name__)
    raise pickle.UnpicklingError(
        f'GLOBAL builtins.getattr({owner}, {name!r}) was refused: only the '
        'statistics methods of mmengine HistoryBuffer may be looked up.')


# numpy 1.x pickles these as numpy.core.multiarray.*, 2.x as
# numpy._core.multiarray.*: the same two functions under both names.
_ARRAY_GLOBALS = [(getattr(_np_multiarray, fn), f'{mod}.multiarray.{fn}')
                  for fn in ('_reconstruct', 'scalar')
                  for mod in ('numpy.core', 'numpy._core')]
#: What a checkpoint of mmengine's Runner holds besides what
#: ``torch.load(weights_only=True)`` accepts by default; unpickling a dtype
#: calls ``__setstate__`` on its class (Float64DType, ...).
MMENGINE_CHECKPOINT_GLOBALS = [
    HistoryBuffer, np.ndarray, np.dtype,
    (_history_buffer_getattr, 'builtins.getattr'), *_ARRAY_GLOBALS,
    *dict.fromkeys(type(np.dtype(c)) for c in _NUMERIC_DTYPE_CODES)]
_ALLOWED_NAMES = {g[1] if isinstance(g, tuple) else
                  f'{g.__module__}.{g.__qualname__}'
                  for g in MMENGINE_CHECKPOINT_GLOBALS}


def load_checkpoint_file(path: Union[str, Path],
                         map_location: Any = 'cpu') -> Any:
    """``torch.load(weights_only=True)`` also allowing what mmengine's
    checkpoints hold (:data:`MMENGINE_CHECKPOINT_GLOBALS`); raises
    :class:`UnsafeCheckpointError` for another global (torch's message kept)
    and :class:`CheckpointError` for an unreadable file."""
    filename = osp.expanduser(os.fspath(path))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    # safe_globals removes its globals on exit, also ones added before
    already = set(torch.serialization.get_safe_globals())
    missing = [g for g in MMENGINE_CHECKPOINT_GLOBALS if g not in already]
    try:
        with torch.serialization.safe_globals(missing):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except Exception as e:  # a broken zip, EOF, a stray pickle opcode, ...
        if isinstance(e, pickle.UnpicklingError) and zipfile.is_zipfile(
                filename):  # torch's weights-only refusal
            raise UnsafeCheckpointError(filename, str(e),
                                        _unsafe_globals(filename)) from e
        raise CheckpointError(
            f'checkpoint {filename} cannot be read (truncated, or not a file '
            f'that torch.save wrote): {_error_line(e)}') from e


def _unsafe_globals(filename: str) -> list:
    """The refused globals by torch's scan of the file (empty if it fails)."""
    with contextlib.suppress(Exception):
        found = torch.serialization.get_unsafe_globals_in_checkpoint(filename)
        return [g for g in found if g not in _ALLOWED_NAMES]
    return []


def _error_line(err: BaseException) -> str:
    """``'TypeName: first line of the message'``."""
    return f'{type(err).__name__}: ' + (str(err).strip().splitlines()
                                        or [''])[0]


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """mmengine's local-path loader (same signature; the name keeps its log
    line), reading through :func:`load_checkpoint_file`."""
    return load_checkpoint_file(filename, map_location=map_location)


def checkpoint_candidates(work_dir: str) -> List[str]:
    """Checkpoints of ``work_dir``, newest first: the one mmengine's
    ``last_checkpoint`` names (its namesake in a moved work dir), then
    ``iter_N.pth`` / ``epoch_N.pth`` by decreasing N, then other ``*.pth``;
    ties by modification time."""
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
    names = [n for n in os.listdir(work_dir) if n.endswith('.pth')] \
        if osp.exists(work_dir) else []

    def key(name):  # N >= 0 of iter_N / epoch_N, else -1; then mtime
        match = _NUMBERED.match(name)
        return (int(match.group(1)) if match else -1,
                osp.getmtime(osp.join(work_dir, name)))

    seen = {osp.abspath(p) for p in out}
    paths = [osp.join(work_dir, n)
             for n in sorted(names, key=key, reverse=True)]
    return out + [p for p in paths if osp.abspath(p) not in seen]


def find_resumable_checkpoint(work_dir: str, warn: Callable[[str], None]
                              ) -> Optional[str]:
    """The newest of :func:`checkpoint_candidates` that loads, or None; one
    that cannot be read (truncated by a kill or a full disk) is skipped with
    a ``warn`` naming it and why, one refused as unsafe raises."""
    for path in checkpoint_candidates(work_dir):
        try:
            checkpoint = load_checkpoint_file(path)
            if not isinstance(checkpoint, dict) or 'meta' not in checkpoint:
                raise ValueError('not an mmengine checkpoint (no "meta")')
        except UnsafeCheckpointError:
            raise
        except Exception as err:  # truncated zip, EOF, missing file, ...
            warn(f'--resume auto: skipping checkpoint {path}, which cannot '
                 f'be loaded ({_error_line(err)}); trying the previous one')
            continue
        return path
    return None


def _write_all(fileobj, data: bytes) -> None:  # a seam for kill tests
    fileobj.write(data)


def atomic_write_bytes(data: bytes, filepath: Union[str, Path]) -> None:
    """Write ``data`` so that readers see the old file or the complete new
    one: a fsync-ed temporary file in the same folder ``os.replace``-d over
    ``filepath`` (a symlink's target), keeping an existing file's mode."""
    filepath = os.fspath(filepath)
    mkdir_or_exist(osp.dirname(filepath) or '.')
    target = osp.realpath(filepath)
    dirname, basename = osp.split(target)
    tmp = osp.join(dirname,
                   f'.{basename}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp')
    f = open(tmp, 'xb')  # a new file, mode 0o666 & ~umask
    try:
        with f:
            _write_all(f, data)
            f.flush()
            os.fsync(f.fileno())
        if osp.exists(target):
            os.chmod(tmp, os.stat(target).st_mode & 0o7777)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself (POSIX only)
        dir_fd = os.open(dirname, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose ``put`` (``save_checkpoint``'s
    write: a plain ``open(path, 'wb')``) is :func:`atomic_write_bytes`."""

    def put(self, obj: bytes, filepath: Union[str, Path]) -> None:
        atomic_write_bytes(obj, filepath)


def register_safe_loading() -> None:
    """Make mmengine read local checkpoints through :func:`load_from_local`
    (``Runner.resume`` / ``load_from``, ``PretrainedInit``) and write local
    files through :class:`AtomicLocalBackend`, process-wide (idempotent)."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local,
                                     force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
