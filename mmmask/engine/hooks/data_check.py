"""Check before training that the data can feed the run."""
from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from mmmask.errors import DataError
from mmmask.registry import HOOKS

__all__ = ['TrainDataCheckHook']


def _dataset_name(dataset) -> str:
    root = getattr(dataset, 'data_root', None) or getattr(
        dataset, 'data_prefix', None)
    return f'{type(dataset).__name__}' + (f' at {root!r}' if root else '')


@HOOKS.register_module()
class TrainDataCheckHook(Hook):
    """Raise :class:`~mmmask.errors.DataError` with one clear line, before the
    first step, when the train dataloader yields no batch: an empty dataset,
    or fewer samples per rank than the batch size under ``drop_last=True``
    (mmengine's iteration loop would otherwise end in a bare
    ``StopIteration``, or spin on an epoch with no batch).
    """

    priority = 'VERY_HIGH'

    def before_train(self, runner) -> None:
        loader = runner.train_loop.dataloader
        dataset = loader.dataset
        size = len(dataset)
        if size == 0:
            raise DataError(
                f'the train dataset is empty ({_dataset_name(dataset)} has '
                'no samples): check train_dataloader.dataset (data_root, '
                'ann_file, data_prefix)')
        if len(loader) == 0:
            world = get_world_size()
            per_rank = len(loader.sampler) if hasattr(
                loader.sampler, '__len__') else size
            ranks = f' ({per_rank} per rank on {world} ranks)' \
                if world > 1 else ''
            raise DataError(
                f'the train dataset has {size} samples{ranks}, fewer than '
                f'the batch size {loader.batch_size} with drop_last=True, so '
                f'no batch can be made ({_dataset_name(dataset)}): lower '
                'train_dataloader.batch_size or set drop_last=False')
