"""Importing mmmask leaves mmengine's checkpoint loader and local file
backend alone; ``register_safe_loading()`` replaces them. Prints one JSON
line (tests/test_engine/test_checkpoint_safety.py)."""
import json

from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local

import mmmask.engine  # noqa: F401
import mmmask.models  # noqa: F401
from mmmask.engine.checkpoint import register_safe_loading

out = dict(loader=CheckpointLoader._get_checkpoint_loader('x.pth')
           is load_from_local,
           backend=type(get_file_backend('x.pth')) is LocalBackend)
register_safe_loading()
out['after'] = [
    CheckpointLoader._get_checkpoint_loader('x.pth').__module__,
    type(get_file_backend('y.pth')).__name__]
print(json.dumps(out))
