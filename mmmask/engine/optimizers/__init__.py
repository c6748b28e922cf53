from .amp_optim_wrapper import AmpOptimWrapper, amp_device_available
from .layer_decay import BackboneLayerDecayOptimWrapperConstructor

__all__ = ['AmpOptimWrapper', 'BackboneLayerDecayOptimWrapperConstructor',
           'amp_device_available']
