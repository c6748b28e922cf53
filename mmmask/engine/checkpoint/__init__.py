"""The checkpoint room: safe loading and atomic writes (:mod:`.io`), plain
checkpoints (:mod:`.plain`) and their hook (:mod:`.hook`, imported by
``mmmask.engine.hooks``), ``--resume auto`` (:mod:`.resume`), what a
checkpoint gives a module (:mod:`.transfer`) and the mmpretrain converter
(:mod:`.convert_mmpretrain`).

Importing it changes nothing in mmengine and imports neither mmmask's
registries nor its models: :func:`register_safe_loading` is the one call
that makes mmengine load and write local checkpoints this way.
"""
from mmmask.errors import (CheckpointError, PretrainedMismatchError,
                           UnsafeCheckpointError)
from .io import (MMENGINE_CHECKPOINT_GLOBALS, AtomicLocalBackend,
                 atomic_write_bytes, load_checkpoint_file, load_from_local,
                 register_safe_loading)
from .plain import (HISTORY_BUFFER_TYPE, TYPE_KEY, restore_checkpoint_objects,
                    strip_wrapper_prefix, to_plain_checkpoint)
from .resume import checkpoint_candidates, find_resumable_checkpoint
from .transfer import (LoadReport, check_pretrained_inits, load_pretrained,
                       checkpoint_state_dict)

__all__ = [
    'CheckpointError', 'PretrainedMismatchError', 'UnsafeCheckpointError',
    'MMENGINE_CHECKPOINT_GLOBALS', 'AtomicLocalBackend', 'atomic_write_bytes',
    'load_checkpoint_file', 'load_from_local', 'register_safe_loading',
    'HISTORY_BUFFER_TYPE', 'TYPE_KEY', 'restore_checkpoint_objects',
    'strip_wrapper_prefix', 'to_plain_checkpoint', 'checkpoint_candidates',
    'find_resumable_checkpoint', 'LoadReport', 'check_pretrained_inits',
    'load_pretrained', 'checkpoint_state_dict'
]
