"""The checkpoint room: safe loading, ``--resume auto`` and atomic writes
(:mod:`.io`), plain checkpoints (:mod:`.plain`; their hook :mod:`.hook` is
imported by ``mmmask.engine.hooks``), load reports (:mod:`.transfer`) and the
mmpretrain converter. Importing it imports no registry or model and changes
nothing in mmengine until :func:`register_safe_loading` is called."""
from mmmask.errors import UnsafeCheckpointError  # noqa: F401
from .io import (MMENGINE_CHECKPOINT_GLOBALS, AtomicLocalBackend,  # noqa
                 find_resumable_checkpoint, load_checkpoint_file,
                 load_from_local, register_safe_loading)
from .plain import (HISTORY_BUFFER_TYPE, TYPE_KEY,  # noqa: F401
                    restore_checkpoint_objects, to_plain_checkpoint)
