"""``AmpOptimWrapper`` that also trains on a machine without an accelerator.

The AMP recipes (``configs/_base_/schedules/adamw_mae.py``: CMAE, MACRL) set
``optim_wrapper.type='AmpOptimWrapper'`` as the papers train. mmengine's
wrapper asserts a CUDA / NPU / MLU / MUSA device, so on a CPU-only machine
those recipes ended in ``AssertionError: AmpOptimizerWrapper is only
available training on gpu, npu, mlu or musa``, and a plain ``OptimWrapper``
refuses the recipe's ``loss_scale``.
"""
import logging
from contextlib import contextmanager

from mmengine.device import (is_cuda_available, is_mlu_available,
                             is_npu_available)
from mmengine.logging import print_log
from mmengine.optim import AmpOptimWrapper as _MMEngineAmpOptimWrapper
from mmengine.optim import OptimWrapper

from mmmask.registry import OPTIM_WRAPPERS

__all__ = ['AmpOptimWrapper', 'amp_device_available']


def amp_device_available() -> bool:
    """Whether mmengine's AMP wrapper can run here (CUDA, NPU, MLU or
    MUSA), as its own check asks."""
    try:
        from mmengine.device import is_musa_available
    except ImportError:  # mmengine before MUSA support
        def is_musa_available():
            return False
    return bool(is_cuda_available() or is_npu_available()
                or is_mlu_available() or is_musa_available())


@OPTIM_WRAPPERS.register_module()
class AmpOptimWrapper(_MMEngineAmpOptimWrapper):
    """mmengine's :class:`~mmengine.optim.AmpOptimWrapper` where an
    accelerator is available; a plain fp32 :class:`OptimWrapper` elsewhere.

    With a CUDA, NPU, MLU or MUSA device this is mmengine's wrapper
    unchanged (autocast to ``dtype``, loss scaling by ``loss_scale``). On a
    machine with none of them it logs one warning saying that the run
    trains in fp32 and then behaves exactly as ``OptimWrapper(**kwargs)``:
    no autocast, no loss scaling (``loss_scale`` and ``dtype`` are ignored).
    Its ``state_dict`` then has no ``loss_scaler`` entry, and a checkpoint
    that has one (written by an AMP run on a GPU) resumes with the entry
    dropped. fp32 rather than bfloat16 autocast on the CPU: the papers'
    numbers come from fp16 AMP on GPUs, which the CPU cannot reproduce
    either way, and fp32 is the precision every CPU test of mmmask checks.

    Registered in mmmask's ``OPTIM_WRAPPERS`` under mmengine's name, so an
    mmmask config's ``type='AmpOptimWrapper'`` and ``tools/train.py --amp``
    (which sets that type) build this class.

    Args:
        loss_scale, dtype, use_fsdp: as mmengine's ``AmpOptimWrapper``
            (unused without an accelerator).
        **kwargs: as :class:`~mmengine.optim.OptimWrapper` (``optimizer``,
            ``accumulative_counts``, ``clip_grad``).
    """

    def __init__(self, loss_scale='dynamic', dtype=None, use_fsdp=False,
                 **kwargs):
        self.amp_enabled = amp_device_available()
        if self.amp_enabled:
            super().__init__(loss_scale=loss_scale, dtype=dtype,
                             use_fsdp=use_fsdp, **kwargs)
            return
        OptimWrapper.__init__(self, **kwargs)
        self.loss_scaler = None
        self.cast_dtype = None
        print_log(
            'AmpOptimWrapper: no CUDA, NPU, MLU or MUSA device here, so '
            'mixed precision is off: training in fp32 as a plain '
            f'OptimWrapper (loss_scale={loss_scale!r}, dtype={dtype!r} '
            'ignored)', logger='current', level=logging.WARNING)

    def backward(self, loss, **kwargs) -> None:
        if self.amp_enabled:
            return super().backward(loss, **kwargs)
        return OptimWrapper.backward(self, loss, **kwargs)

    def step(self, **kwargs) -> None:
        if self.amp_enabled:
            return super().step(**kwargs)
        return OptimWrapper.step(self, **kwargs)

    def state_dict(self) -> dict:
        if self.amp_enabled:
            return super().state_dict()
        return OptimWrapper.state_dict(self)

    def load_state_dict(self, state_dict: dict) -> None:
        if self.amp_enabled:
            return super().load_state_dict(state_dict)
        state_dict = dict(state_dict)
        state_dict.pop('loss_scaler', None)  # an AMP run's, not used here
        return OptimWrapper.load_state_dict(self, state_dict)

    @contextmanager
    def optim_context(self, model):
        if self.amp_enabled:
            with super().optim_context(model):
                yield
        else:
            with OptimWrapper.optim_context(self, model):
                yield
