"""The checkpoint room: safe loading and atomic writes (:mod:`.io`), plain
checkpoints (:mod:`.plain`) and their hook (:mod:`.hook`, imported by
``mmmask.engine.hooks``), ``--resume auto`` (:mod:`.resume`), what a
checkpoint gives a module (:mod:`.transfer`) and the mmpretrain converter
(:mod:`.convert_mmpretrain`).

Importing it changes nothing in mmengine and imports neither mmmask's
registries nor its models: :func:`register_safe_loading` is the one call
that makes mmengine load and write local checkpoints this way.
"""
from mmmask.errors import (CheckpointError, PretrainedMismatchError,  # noqa
                           UnsafeCheckpointError)
from .io import (MMENGINE_CHECKPOINT_GLOBALS, AtomicLocalBackend,  # noqa
                 atomic_write_bytes, load_checkpoint_file, load_from_local,
                 register_safe_loading)
from .plain import (HISTORY_BUFFER_TYPE, TYPE_KEY,  # noqa: F401
                    restore_checkpoint_objects, strip_wrapper_prefix,
                    to_plain_checkpoint)
from .resume import (checkpoint_candidates,  # noqa: F401
                     find_resumable_checkpoint)
from .transfer import (LoadReport, check_pretrained_inits,  # noqa: F401
                       checkpoint_state_dict, load_pretrained)
