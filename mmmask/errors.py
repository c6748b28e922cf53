"""Errors that mean "bad input or config", not "bug".

Each has a one-line message that says what is wrong and where;
``tools/train.py`` prints any :class:`MMMaskError` as one
``train.py: error: ...`` line instead of a traceback.
"""
import pickle

__all__ = ['MMMaskError', 'DataError', 'NonFiniteLossError',
           'ChannelMismatchError', 'RangeError', 'CorruptImageError',
           'CheckpointError', 'UnsafeCheckpointError',
           'PretrainedMismatchError']


class MMMaskError(Exception):
    """Base class: bad input or config, reported in one line."""


class DataError(MMMaskError, ValueError):
    """The training data cannot feed the run (empty, smaller than a batch)."""


class NonFiniteLossError(MMMaskError, FloatingPointError):
    """A loss term is NaN or infinite (names the iteration and the terms)."""


class ChannelMismatchError(MMMaskError, ValueError):
    """A module's input channels differ from what the previous one gives."""


class RangeError(MMMaskError, ValueError):
    """A hyper-parameter outside its range (a mask ratio outside [0, 1))."""


class CorruptImageError(MMMaskError, ValueError):
    """An image file that exists but cannot be decoded (or is truncated)."""
class CheckpointError(MMMaskError, RuntimeError):
    """A checkpoint file cannot be used: it is unreadable (truncated, not a
    torch file), refused (a global outside the allow-list) or does not fit
    the model. The message names the file."""


class UnsafeCheckpointError(CheckpointError, pickle.UnpicklingError):
    """A checkpoint holds an object that is not an mmengine checkpoint type.

    The message's first line names the file and the refused globals (as
    torch's ``get_unsafe_globals_in_checkpoint`` lists them, where it can);
    torch's own message follows, unchanged.

    Attributes:
        path (str): the checkpoint file.
        unsafe (list[str]): globals of the file outside the allow-list.
        torch_message (str): torch's refusal.
    """

    def __init__(self, path: str, torch_message: str, unsafe=()) -> None:
        self.path, self.torch_message = path, torch_message
        self.unsafe = list(unsafe)
        what = ', '.join(self.unsafe) or \
            'an object that a weights-only load refuses'
        super().__init__(
            f'checkpoint {path} refused: it holds {what}, which is not an '
            'mmengine checkpoint type (allowed besides tensors and plain '
            'values: mmengine HistoryBuffer, numpy arrays, scalars and '
            'numeric dtypes); unpickling other objects can run arbitrary '
            'code: if you trust the file, allow the global with '
            'torch.serialization.add_safe_globals\n' + torch_message)

    def __reduce__(self):  # picklable across processes despite __init__
        return type(self), (self.path, self.torch_message, self.unsafe)


class PretrainedMismatchError(CheckpointError):
    """A checkpoint does not fit the module it should initialise (missing
    or mismatched tensors: another architecture, another prefix)."""
