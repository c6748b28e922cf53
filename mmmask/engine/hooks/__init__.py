from .loss_weight_warmup import LossWeightWarmupHook

__all__ = ['LossWeightWarmupHook']
