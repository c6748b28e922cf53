from .dist import batch_shuffle, batch_unshuffle, gather_all
from .init import mae_init_
from .layer_output import find_layer, layer_output
from .momentum_encoder import MomentumEncoder
from .pretrained import backbone_state, build_frozen
from .queue import FeatureQueue
from .roi_align import roi_align
from .step_random import StepRandom, step_seed

__all__ = ['gather_all', 'batch_shuffle', 'batch_unshuffle',
           'MomentumEncoder', 'FeatureQueue', 'roi_align', 'StepRandom',
           'step_seed', 'mae_init_', 'find_layer', 'layer_output',
           'backbone_state', 'build_frozen']
