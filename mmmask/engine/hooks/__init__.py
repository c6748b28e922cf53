from .exact_resume import ExactResumeHook, ensure_exact_resume_hook
from .loss_weight_warmup import LossWeightWarmupHook
from .safe_checkpoint import (SafeCheckpointHook,  # noqa: F401
                              ensure_safe_checkpoint_hook)
from .online_knn import OnlineKNNHook  # noqa: F401

__all__ = ['LossWeightWarmupHook', 'ExactResumeHook',
           'ensure_exact_resume_hook']
