"""Layer-wise learning-rate decay for any model whose backbone knows its
layers' depth (mmpretrain's ViTs), e.g. an mmseg segmentor."""
from mmengine.registry import \
    OPTIM_WRAPPER_CONSTRUCTORS as ROOT_CONSTRUCTORS
from mmpretrain.engine.optimizers import \
    LearningRateDecayOptimWrapperConstructor

from mmmask.registry import OPTIM_WRAPPER_CONSTRUCTORS


class BackboneLayerDecayOptimWrapperConstructor(
        LearningRateDecayOptimWrapperConstructor):
    """mmpretrain's layer-wise lr decay (BEiT / MAE fine-tuning) for a model
    that has no ``get_layer_depth`` of its own but whose ``backbone`` has
    one (mmpretrain's ``VisionTransformer`` inside an mmseg
    ``EncoderDecoder``; mmseg's own constructor only recognises backbones
    whose class names contain BEiT, MAE or ConvNeXt).

    A parameter of depth ``d`` of ``D`` (``backbone.get_layer_depth(name,
    'backbone.')``: 0 for the patch embedding, cls token and position
    embedding, i + 1 for block i, ``D - 1`` for everything outside the
    backbone, the heads) gets ``lr * layer_decay_rate ** (D - 1 - d)``.
    ``paramwise_cfg`` as mmpretrain's
    ``LearningRateDecayOptimWrapperConstructor`` (``layer_decay_rate``, ``norm_decay_mult``, ``bias_decay_mult``,
    ``flat_decay_mult``, ``custom_keys``).

    Registered in mmmask's registry and in mmengine's root one, so that an
    mmseg / mmdet config finds it by name after
    ``custom_imports=dict(imports=['mmmask.engine.optimizers'])`` (mmengine
    resolves ``scope.Name`` only for direct children of the root, and
    mmmask's registries are mmpretrain's children).
    """

    def add_params(self, params, module, prefix='', get_layer_depth=None,
                   **kwargs):
        if get_layer_depth is None and not hasattr(module, 'get_layer_depth'):
            backbone = getattr(module, 'backbone', None)
            if not hasattr(backbone, 'get_layer_depth'):
                raise TypeError(
                    f'{type(self).__name__} needs a model whose backbone has '
                    f'get_layer_depth(name, prefix) (mmpretrain ViTs), got '
                    f'{type(backbone).__name__}')

            def get_layer_depth(name):
                return backbone.get_layer_depth(name, 'backbone.')

        super().add_params(params, module, prefix, get_layer_depth, **kwargs)


OPTIM_WRAPPER_CONSTRUCTORS.register_module(
    module=BackboneLayerDecayOptimWrapperConstructor)
ROOT_CONSTRUCTORS.register_module(
    module=BackboneLayerDecayOptimWrapperConstructor)
