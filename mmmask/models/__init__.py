# mmmask's registries are children of mmpretrain's; a child does not trigger
# its parent's lazy imports, so register mmpretrain's parts here.
import mmpretrain.models  # noqa: F401

from .algorithms import *  # noqa: F401,F403
from .heads import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .necks import *  # noqa: F401,F403
from .utils import *  # noqa: F401,F403
from . import mask_generators  # noqa: F401
from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
