from .data_check import TrainDataCheckHook
from .dist_end import DistributedEndHook, close_distributed
from .exact_resume import ExactResumeHook
from .loss_weight_warmup import LossWeightWarmupHook
from .nonfinite_loss import NonFiniteLossHook
from .online_knn import OnlineKNNHook  # noqa: F401
from .online_dense_probe import OnlineDenseProbeHook  # noqa: F401
from ..checkpoint.hook import SafeCheckpointHook  # noqa: F401

__all__ = ['LossWeightWarmupHook', 'ExactResumeHook', 'NonFiniteLossHook',
           'TrainDataCheckHook', 'DistributedEndHook', 'close_distributed']
