"""AMP recipes on a machine without CUDA: mmmask's ``AmpOptimWrapper`` trains
in fp32 as a plain ``OptimWrapper`` with one warning (mmengine's asserts a
GPU / NPU / MLU / MUSA device), and is mmengine's AMP wrapper where one is
available."""
import copy
import os
import os.path as osp
import subprocess
import sys
import textwrap

import pytest
import torch
from torch import nn
from helpers import ROOT

WARNING = 'AmpOptimWrapper: no CUDA, NPU, MLU or MUSA device here'


@pytest.fixture
def no_accelerator(monkeypatch):
    import mmmask.engine.optimizers.amp_optim_wrapper as amp
    monkeypatch.setattr(amp, 'amp_device_available', lambda: False)


def _build(cfg):
    from mmmask.registry import OPTIM_WRAPPERS
    return OPTIM_WRAPPERS.build(cfg)


def _model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))


def _steps(model, wrapper, n=3):
    torch.manual_seed(1)
    for _ in range(n):
        x = torch.randn(4, 6)
        with wrapper.optim_context(model):
            loss = model(x).pow(2).mean()
        wrapper.update_params(loss)


def test_recipe_type_builds_mmmask_wrapper():
    from mmengine.optim import AmpOptimWrapper as MMEngineAmp

    from mmmask.engine.optimizers import AmpOptimWrapper
    from mmmask.registry import OPTIM_WRAPPERS
    assert OPTIM_WRAPPERS.get('AmpOptimWrapper') is AmpOptimWrapper
    assert issubclass(AmpOptimWrapper, MMEngineAmp)


def test_cpu_fallback_equals_plain_optim_wrapper(no_accelerator, caplog):
    from mmengine.logging import MMLogger
    from mmengine.optim import OptimWrapper
    MMLogger.get_instance('mmmask_test_amp')  # a current logger
    ref_model = _model()
    model = copy.deepcopy(ref_model)
    ref = OptimWrapper(torch.optim.SGD(ref_model.parameters(), lr=0.1,
                                       momentum=0.9),
                       clip_grad=dict(max_norm=0.5))
    wrapper = _build(dict(
        type='AmpOptimWrapper', loss_scale='dynamic', dtype='float16',
        clip_grad=dict(max_norm=0.5),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)))
    assert wrapper.amp_enabled is False and wrapper.loss_scaler is None
    _steps(ref_model, ref)
    _steps(model, wrapper)
    for p, q in zip(ref_model.parameters(), model.parameters()):
        assert torch.equal(p, q)  # fp32, no scaling: the same steps exactly
    assert 'loss_scaler' not in wrapper.state_dict()
    assert wrapper.state_dict().keys() == ref.state_dict().keys()
    # an AMP run's checkpoint (with a loss scaler) resumes here
    state = ref.state_dict()
    state['loss_scaler'] = {'scale': 65536.0}
    wrapper.load_state_dict(state)
    assert 'loss_scaler' in state  # the caller's dict is left alone


def test_with_accelerator_it_is_mmengine_amp(monkeypatch):
    """Where a device is available the wrapper is mmengine's AMP wrapper
    (its device assertion is satisfied by hand here; the GradScaler it
    makes is then a disabled one on the CPU)."""
    import mmengine.optim.optimizer.amp_optimizer_wrapper as mm_amp

    import mmmask.engine.optimizers.amp_optim_wrapper as amp
    monkeypatch.setattr(amp, 'amp_device_available', lambda: True)
    monkeypatch.setattr(mm_amp, 'is_cuda_available', lambda: True)
    model = _model()
    with pytest.warns(UserWarning):  # torch: GradScaler without CUDA
        wrapper = _build(dict(
            type='AmpOptimWrapper', loss_scale='dynamic', dtype='bfloat16',
            optimizer=torch.optim.SGD(model.parameters(), lr=0.1)))
    assert wrapper.amp_enabled is True
    assert wrapper.cast_dtype is torch.bfloat16
    assert 'loss_scaler' in wrapper.state_dict()


def test_amp_recipe_trains_on_cpu_with_one_warning(tmp_path):
    """A tiny CMAE run with the AMP recipe's optim wrapper
    (``_base_/schedules/adamw_mae.py``: AmpOptimWrapper, dynamic loss scale)
    through tools/train.py on this CPU machine."""
    if torch.cuda.is_available():
        pytest.skip('this machine has CUDA: the wrapper runs AMP')
    images = tmp_path / 'images'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'),
         '--out', str(images), '--num', '4'], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    demo = osp.join(ROOT, 'configs', 'demo', 'cmae_vit-tiny_demo.py')
    cfg = tmp_path / 'cmae_amp_tiny.py'
    cfg.write_text(textwrap.dedent(f'''
        _base_ = [{demo!r}]
        # as _base_/schedules/adamw_mae.py (CMAE / MACRL recipes)
        optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
        train_dataloader = dict(batch_size=2, num_workers=0,
                                persistent_workers=False,
                                dataset=dict(data_root={str(images)!r}))
        train_cfg = dict(max_iters=2)
        param_scheduler = []
        default_hooks = dict(logger=dict(interval=1),
                             checkpoint=dict(interval=2))
        '''))
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        [ROOT] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
    work = tmp_path / 'work'
    proc = subprocess.run(
        [sys.executable, osp.join(ROOT, 'tools', 'train.py'), str(cfg),
         '--work-dir', str(work)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert out.count(WARNING) == 1, out[-5000:]
    assert (work / 'iter_2.pth').is_file()
    saved = torch.load(work / 'iter_2.pth', map_location='cpu',
                       weights_only=True)
    assert 'loss_scaler' not in saved['optimizer']
