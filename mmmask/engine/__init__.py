from .checkpoint import (UnsafeCheckpointError,  # noqa: F401
                         load_checkpoint_file)
from .hooks import *  # noqa: F401,F403
from .hooks.safe_checkpoint import SafeCheckpointHook  # noqa: F401
from .optimizers import *  # noqa: F401,F403
