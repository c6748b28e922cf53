from .data_check import TrainDataCheckHook
from .dist_end import DistributedEndHook, close_distributed
from .ensure import ensure_custom_hook
from .exact_resume import ExactResumeHook
from .loss_weight_warmup import LossWeightWarmupHook
from .nonfinite_loss import NonFiniteLossHook
from .safe_checkpoint import (SafeCheckpointHook,  # noqa: F401
                              ensure_safe_checkpoint_hook)
from .online_knn import OnlineKNNHook  # noqa: F401

__all__ = ['LossWeightWarmupHook', 'ExactResumeHook', 'NonFiniteLossHook',
           'TrainDataCheckHook', 'ensure_custom_hook', 'DistributedEndHook',
           'close_distributed']

#: Hooks that tools/train.py adds to every run whose config leaves them out:
#: checks and state that every mmmask run should have.
DEFAULT_CUSTOM_HOOKS = ('ExactResumeHook', 'NonFiniteLossHook',
                        'TrainDataCheckHook', 'DistributedEndHook')
