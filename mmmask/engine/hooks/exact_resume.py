"""Resume a run exactly: the random number generators and the position in
the data are stored in every checkpoint and restored on resume."""
import random
from functools import partial
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from mmengine.dist import all_gather_object, get_rank, get_world_size
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from mmmask.registry import HOOKS

__all__ = ['ExactResumeHook', 'get_rng_state', 'set_rng_state']

#: Checkpoint keys written by :class:`ExactResumeHook`.
RNG_KEY, DATA_KEY = 'rng_state', 'data_state'


def get_rng_state() -> Dict[str, Any]:
    """This process's Python, numpy, torch (and CUDA) generator states, as
    plain values and tensors (``torch.load(weights_only=True)`` reads them).
    """
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = dict(
        python=dict(version=version,
                    internal=torch.tensor(internal, dtype=torch.int64),
                    gauss=gauss),
        numpy=dict(kind=kind, keys=torch.from_numpy(keys.astype(np.int64)),
                   pos=int(pos), has_gauss=int(has_gauss),
                   cached=float(cached)),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` returned."""
    py = state['python']
    random.setstate((py['version'], tuple(int(v) for v in py['internal']),
                     py['gauss']))
    npy = state['numpy']
    np.random.set_state((npy['kind'], npy['keys'].numpy().astype(np.uint32),
                         npy['pos'], npy['has_gauss'], npy['cached']))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


class _PositionedIterator:
    """An infinite iterator over ``dataloader`` that starts after batch
    ``batch`` of epoch ``epoch`` (``batch`` may be the epoch's length: the
    next call starts the next epoch), like mmengine's iterator of the
    ``IterBasedTrainLoop``: at the end of an epoch the sampler moves to the
    next epoch and a new pass begins.

    The sampler is set to ``epoch`` (it shuffles with ``seed + epoch``) and
    the first ``batch`` batches of indices are drawn without reading an image
    (through ``_next_index`` of torch's single-process DataLoader iterator;
    :meth:`supported` says whether this torch has it).
    """

    @staticmethod
    def supported() -> bool:
        from torch.utils.data.dataloader import _SingleProcessDataLoaderIter
        return hasattr(_SingleProcessDataLoaderIter, '_next_index')

    def __init__(self, dataloader, epoch: int, batch: int) -> None:
        self._dataloader = dataloader
        self._epoch = epoch
        self._start(batch)

    def _start(self, batch: int) -> None:
        sampler = getattr(self._dataloader, 'sampler', None)
        if hasattr(sampler, 'set_epoch'):
            sampler.set_epoch(self._epoch)
        self._iterator = iter(self._dataloader)
        for _ in range(batch):  # indices only: no image is read
            self._iterator._next_index()

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._iterator)
        except StopIteration:
            self._epoch += 1
            self._start(0)
            return next(self._iterator)


class _ResumeIterator:
    """Replaces the loop's data iterator on resume.

    mmengine's ``IterBasedTrainLoop`` skips the finished iterations by
    calling ``next()`` once for each. The first ``skip_calls`` calls go to
    ``skipped`` (``None``: answered at once; else an iterator that replays
    the data); then ``on_start()`` runs once (restoring the generators, so
    that nothing drawn while skipping counts), and every later call goes to
    ``iterator``.
    """

    def __init__(self, iterator, skip_calls: int, on_start, skipped=None):
        self._iterator, self._skipped = iterator, skipped
        self._skip_calls, self._on_start = skip_calls, on_start

    def __iter__(self):
        return self

    def __next__(self):
        if self._skip_calls > 0:
            self._skip_calls -= 1
            return None if self._skipped is None else next(self._skipped)
        if self._on_start is not None:
            on_start, self._on_start = self._on_start, None
            on_start()
        return next(self._iterator)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Make ``--resume`` continue as if the run had never stopped.

    Saved in every checkpoint (plain values and tensors, so the file still
    loads with ``weights_only=True``):

    * ``checkpoint['rng_state']``: a list, one entry per rank, of the Python,
      numpy, torch (and CUDA) generator states at the moment the checkpoint
      is written (after the iteration, before the next batch is loaded);
    * ``checkpoint['data_state']``: ``consumed_batches`` (iterations done)
      and ``batches_per_epoch``, which fix the epoch (the sampler's shuffle
      seed is ``seed + epoch``) and the batch within it.

    On resume (``after_load_checkpoint``, then ``before_train_epoch``, after
    ``DistSamplerSeedHook`` has set the sampler's epoch; a checkpoint given
    by ``load_from`` without resuming starts at iteration 0 and is left
    alone), for an ``IterBasedTrainLoop`` whose dataloader has no workers,
    the data goes on after the last finished batch of the stored epoch
    without loading the finished ones (:class:`_PositionedIterator`), and
    each rank gets its generator states back right before the first new
    batch is drawn (:class:`_ResumeIterator`). With ``num_workers > 0`` the
    augmentations run in the worker processes, which mmengine's
    ``worker_init_fn`` reseeds whenever they start; there mmengine's replay
    of the finished batches is kept (it draws the same augmentations in the
    same workers; not tested here), and only the main process's generators
    (shuffle BN, drop-path, ...) are restored after it.

    Exact when the run is deterministic anyway: ``randomness=dict(seed=...,
    deterministic=True)``, the same config and the same number of ranks.
    Under several ranks the states of all ranks are gathered after every
    iteration (one small ``all_gather_object``), because only rank 0 writes
    the checkpoint.

    Args:
        fast_forward (bool): skip finished batches without loading them
            (no workers only). Defaults to True.
    """

    priority = 'LOW'  # after DistSamplerSeedHook, before CheckpointHook

    def __init__(self, fast_forward: bool = True) -> None:
        self.fast_forward = fast_forward
        self._gathered: Optional[List[dict]] = None
        self._resumed: Optional[dict] = None

    # ---------------------------------------------------------------- save
    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if get_world_size() > 1:
            self._gathered = all_gather_object(get_rng_state())

    def after_train_epoch(self, runner) -> None:
        self.after_train_iter(runner, 0)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._gathered if get_world_size() > 1 else None
        checkpoint[RNG_KEY] = states or [get_rng_state()]
        loader = runner.train_loop.dataloader
        checkpoint[DATA_KEY] = dict(
            consumed_batches=int(checkpoint['meta']['iter']),
            batches_per_epoch=len(loader))

    # -------------------------------------------------------------- resume
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._resumed = dict(rng=checkpoint.get(RNG_KEY),
                             data=checkpoint.get(DATA_KEY))

    def before_train_epoch(self, runner) -> None:
        resumed, self._resumed = self._resumed, None
        if resumed is None or runner.iter == 0:  # load_from: not a resume
            return
        if resumed['rng'] is None:
            runner.logger.warning(
                'ExactResumeHook: the checkpoint holds no generator states '
                '(written without this hook): the resumed run draws '
                'different random numbers than an uninterrupted one.')
            return
        loop = runner.train_loop
        if not isinstance(loop, IterBasedTrainLoop):
            self._restore_rng(runner, resumed['rng'])
            return
        skip = loop.iter
        restore = partial(self._restore_rng, runner, resumed['rng'])
        positioned = self._positioned(runner, resumed['data'])
        if positioned is None:  # mmengine's replay of the finished batches
            loop.dataloader_iterator = _ResumeIterator(
                loop.dataloader_iterator, skip, restore,
                skipped=loop.dataloader_iterator)
        else:
            loop.dataloader_iterator = _ResumeIterator(positioned, skip,
                                                       restore)

    def _restore_rng(self, runner, states: List[dict]) -> None:
        if len(states) != get_world_size():
            runner.logger.warning(
                f'ExactResumeHook: the checkpoint holds the generator states '
                f'of {len(states)} ranks, this run has {get_world_size()}: '
                'the random numbers differ from an uninterrupted run.')
            return
        set_rng_state(states[get_rank()])
        runner.logger.info('ExactResumeHook: generator states restored.')

    def _positioned(self, runner, data: Optional[dict]):
        """The data iterator at the stored position, or None (replay)."""
        loader = runner.train_loop.dataloader
        if not (self.fast_forward and data and loader.num_workers == 0
                and _PositionedIterator.supported()):
            return None
        per_epoch, done = len(loader), data['consumed_batches']
        if data['batches_per_epoch'] != per_epoch or per_epoch == 0:
            runner.logger.warning(
                f'ExactResumeHook: {data["batches_per_epoch"]} batches per '
                f'epoch when saved, {per_epoch} now (batch size, data or '
                'ranks changed): the data is replayed, not resumed exactly.')
            return None
        # After batch `batch` of epoch `epoch`; at an epoch's end the next
        # pass starts in the next call, as in the uninterrupted run.
        epoch, batch = divmod(max(done - 1, 0), per_epoch)
        batch = batch + 1 if done else 0
        runner.logger.info(
            f'ExactResumeHook: data resumes after batch {batch} of {per_epoch}'
            f' of epoch {epoch} (the {done} finished batches are skipped '
            'without loading them).')
        return _PositionedIterator(loader, epoch, batch)

