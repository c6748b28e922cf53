from .loss_weight_warmup import LossWeightWarmupHook
from .safe_checkpoint import (SafeCheckpointHook,  # noqa: F401
                              ensure_safe_checkpoint_hook)

__all__ = ['LossWeightWarmupHook']
