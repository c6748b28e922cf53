"""Runners built back to back in one process get their own timestamp, log
folder and logger (``mmmask.apis.launch.build_runner``): mmengine names
them after the second a run starts in."""
from mmengine.config import Config
from mmengine.model import BaseModel

from mmmask.apis import launch
from mmmask.registry import MODELS, RUNNERS


@MODELS.register_module(name='_RunnerNameProbe', force=True)
class _Probe(BaseModel):

    def forward(self, *args, **kwargs):  # pragma: no cover (never run)
        return {}


def test_runners_built_back_to_back_have_their_own_names(tmp_path):
    runners = [launch.build_runner(Config(dict(
        model=dict(type='_RunnerNameProbe'), work_dir=str(tmp_path),
        default_scope='mmmask')), RUNNERS) for _ in range(3)]
    # the 2nd and 3rd builds take milliseconds: without the wait they
    # would share a second, a log folder and a logger
    assert len({r.timestamp for r in runners}) == 3
    assert len({r.log_dir for r in runners}) == 3
    assert len({id(r.logger) for r in runners}) == 3
