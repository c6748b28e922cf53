"""Test head ``NaNAtCallHead`` (tests/test_datasets/test_bad_input.py)."""
from mmmask.models.heads import InfoNCEHead
from mmmask.registry import MODELS


@MODELS.register_module()
class NaNAtCallHead(InfoNCEHead):
    """InfoNCE whose ``nan_at``-th call returns NaN (test only)."""

    def __init__(self, nan_at, **kwargs):
        super().__init__(**kwargs)
        self.nan_at, self.calls = nan_at, 0

    def loss(self, *args, **kwargs):
        self.calls += 1
        out = super().loss(*args, **kwargs)
        return out * float('nan') if self.calls == self.nan_at else out
