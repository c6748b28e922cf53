"""Stop (or skip the step) when a loss term is NaN or infinite."""
import logging
from typing import Dict

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper

from mmmask.errors import NonFiniteLossError
from mmmask.models.utils import FeatureQueue
from mmmask.registry import HOOKS

__all__ = ['NonFiniteLossHook']

ACTIONS = ('error', 'skip')


def _describe(losses: Dict[str, object]) -> str:
    """``'loss_global=nan, loss_dense=3.2109'`` for the loss terms."""
    parts = []
    for name, value in losses.items():
        if 'loss' not in name:
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        nums = [float(v.detach().float().mean()) if torch.is_tensor(v)
                else float(v) for v in values]
        parts.append(f'{name}=' + '/'.join(f'{n:.4g}' for n in nums))
    return ', '.join(parts)


def _finite(losses: Dict[str, object]) -> bool:
    for name, value in losses.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if 'loss' in name and torch.is_tensor(v) and \
                    not bool(torch.isfinite(v.detach()).all()):
                return False
    return True


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check every training step's loss terms before the optimizer sees them.

    A forward hook on the model (inside the model wrapper, so it runs under
    DDP and FSDP too) looks at the dict of loss terms that
    ``forward(mode='loss')`` returns, before ``parse_losses``, backward and
    the optimizer step. Under several ranks the verdict is all-reduced, so
    every rank acts alike (no rank waits in a collective the others left).

    * ``action='error'`` (default): raise :class:`NonFiniteLossError`,
      naming the iteration (1-based, as in the log) and every loss term's
      value: ``non-finite loss at iteration 7: loss_global=nan,
      loss_dense=5.321``.
    * ``action='skip'``: skip that step: no backward, no optimizer step
      (gradients are zeroed), and the keys that the step enqueued into the
      model's feature queues are dropped (they are held until the next
      step, see ``FeatureQueue``). The momentum encoder's EMA update of
      that step has already happened (from the unchanged online weights).
      Each skip logs a warning with the running count.

    Args:
        action (str): ``'error'`` or ``'skip'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'error') -> None:
        if action not in ACTIONS:
            raise ValueError(f'NonFiniteLossHook: action must be one of '
                             f'{ACTIONS}, got {action!r}')
        self.action = action
        self.num_skipped = 0
        self._bad = None  # the terms of the step to skip
        self._runner = None
        self._handle = None

    def before_train(self, runner) -> None:
        self._runner = runner
        model = runner.model.module if is_model_wrapper(runner.model) \
            else runner.model
        if self._handle is None:
            self._handle = model.register_forward_hook(
                self._check, with_kwargs=True)
        if self.action == 'skip':
            self._guard(runner.optim_wrapper, model)

    def after_train(self, runner) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _check(self, module, args, kwargs, output) -> None:
        if kwargs.get('mode', 'tensor') != 'loss' or \
                not isinstance(output, dict) or not module.training:
            return
        bad = torch.tensor(0. if _finite(output) else 1.)
        if get_world_size() > 1:
            device = next((v.device for v in output.values()
                           if torch.is_tensor(v)), bad.device)
            bad = bad.to(device)
            all_reduce(bad, op='sum')
        if float(bad) == 0:
            return
        iteration = self._runner.iter + 1 if self._runner else '?'
        terms = _describe(output)
        if _finite(output):  # finite here, not on another rank
            terms += ' on this rank; non-finite on another rank'
        if self.action == 'error':
            raise NonFiniteLossError(
                f'non-finite loss at iteration {iteration}: {terms}; '
                'training stopped (NonFiniteLossHook(action="skip") skips '
                'such steps instead)')
        self._bad = (iteration, terms)

    def _guard(self, optim_wrapper, model) -> None:
        """Make ``optim_wrapper.update_params`` skip flagged steps."""
        if getattr(optim_wrapper, '_mmmask_nonfinite_guard', False):
            return
        update_params = optim_wrapper.update_params
        queues = [m for m in model.modules() if isinstance(m, FeatureQueue)]

        def guarded(loss, *args, **kwargs):
            if self._bad is None:
                return update_params(loss, *args, **kwargs)
            (iteration, terms), self._bad = self._bad, None
            optim_wrapper.zero_grad()
            for queue in queues:
                queue.drop_pending()
            self.num_skipped += 1
            print_log(f'NonFiniteLossHook: skipped the step of iteration '
                      f'{iteration} ({terms}); {self.num_skipped} skipped so '
                      'far', logger='current', level=logging.WARNING)

        optim_wrapper.update_params = guarded
        optim_wrapper._mmmask_nonfinite_guard = True
