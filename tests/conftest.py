"""Fixtures shared by the tests (helper functions: tests/helpers.py)."""
import pytest
from helpers import pretrained_r50


@pytest.fixture(scope='session')
def checkpoint(tmp_path_factory):
    """A 2-iteration mmmask DenseCL ResNet-50 checkpoint (made once per
    session; tests/test_apis/test_transfer_mmdet.py,
    tests/test_apis/test_transfer_mmseg.py)."""
    return pretrained_r50(tmp_path_factory.getbasetemp())
