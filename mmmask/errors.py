"""Errors that mean "bad input or config", not "bug".

Each has a one-line message that says what is wrong and where;
``tools/train.py`` prints any :class:`MMMaskError` as one
``train.py: error: ...`` line instead of a traceback.
"""

__all__ = ['MMMaskError', 'DataError', 'NonFiniteLossError',
           'ChannelMismatchError', 'RangeError', 'CorruptImageError']


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
