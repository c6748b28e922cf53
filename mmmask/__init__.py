"""mmmask: masked and dense contrastive self-supervised pretraining for
vision backbones, in the OpenMMLab style."""
from .version import __version__  # noqa: F401
