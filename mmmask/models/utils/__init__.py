from .dist import batch_shuffle, batch_unshuffle, gather_all
from .init import mae_init_
from .momentum_encoder import MomentumEncoder
from .queue import FeatureQueue
from .roi_align import roi_align
from .step_random import StepRandom, step_seed

__all__ = ['gather_all', 'batch_shuffle', 'batch_unshuffle',
           'MomentumEncoder', 'FeatureQueue', 'roi_align', 'StepRandom',
           'step_seed', 'mae_init_']
