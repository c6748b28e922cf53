"""Plugins (projects/): a head registered from outside mmmask, used by a
config through custom_imports only; registry name clashes."""
import math
import os.path as osp
import sys

import pytest
import torch
import torch.nn.functional as F
from helpers import (ROOT, check_ok, logged_losses,
                     tiny_run_config, train)
from mmengine.config import Config

from mmmask.registry import MODELS, NameClashError

PROJECT_CFG = osp.join(ROOT, 'projects', 'hard_negatives', 'configs',
                       'mocov2_r18_demo_hardneg.py')


def _head_module():
    if ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    from projects.hard_negatives import hard_negatives
    return hard_negatives


def _unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g, dtype=torch.float64),
                       dim=-1)


def test_hard_negative_head_math():
    plugin = _head_module()
    from mmmask.models.heads import InfoNCEHead
    q = _unit(6, 8, seed=1).requires_grad_()
    k, neg = _unit(6, 8, seed=2), _unit(20, 8, seed=3)

    # beta = 0: plain InfoNCE (mmmask's head), value and gradient
    plain = InfoNCEHead(temperature=0.2).loss(q, k, neg)
    zero = plugin.HardNegativeInfoNCEHead(temperature=0.2, beta=0.).loss(
        q, k, neg)
    g_plain, = torch.autograd.grad(plain, q)
    g_zero, = torch.autograd.grad(zero, q)
    assert torch.allclose(zero, plain, atol=1e-12)
    assert torch.allclose(g_zero, g_plain, atol=1e-12)

    # beta > 0: the weighted estimator written out with explicit weights
    beta, t = 1.5, 0.2
    head = plugin.HardNegativeInfoNCEHead(temperature=t, beta=beta)
    got = head.loss(q, k, neg)
    losses = []
    for i in range(q.shape[0]):
        sims = [float(q[i].detach() @ n) / t for n in neg]
        imp = [math.exp(beta * s) for s in sims]
        weights = [len(sims) * w / sum(imp) for w in imp]
        pos = math.exp(float(q[i].detach() @ k[i]) / t)
        neg_sum = sum(w * math.exp(s) for w, s in zip(weights, sims))
        losses.append(-math.log(pos / (pos + neg_sum)))
    assert got.item() == pytest.approx(sum(losses) / len(losses), rel=1e-10)
    # up-weighting the hardest negatives raises the loss
    assert got.item() > plain.item()

    with pytest.raises(ValueError, match='beta must be >= 0'):
        plugin.HardNegativeInfoNCEHead(beta=-0.1)


def test_project_config_swaps_only_the_head():
    base = Config.fromfile(osp.join(ROOT, 'configs', 'demo',
                                    'mocov2_r18_demo.py'))
    cfg = Config.fromfile(PROJECT_CFG)  # runs custom_imports
    assert cfg.model.head == dict(type='HardNegativeInfoNCEHead',
                                  temperature=0.2, beta=1.0)
    assert {k: v for k, v in cfg.model.items() if k != 'head'} == \
        {k: v for k, v in base.model.items() if k != 'head'}
    head = MODELS.build(cfg.model.head)
    assert type(head).__module__ == \
        'projects.hard_negatives.hard_negatives.hard_negative_head'


def test_project_config_trains_through_train_py(tmp_path, demo_images):
    data = demo_images
    cfg = tmp_path / 'hardneg_tiny.py'
    cfg.write_text(tiny_run_config(PROJECT_CFG, data, max_iters=2))
    work = tmp_path / 'work'
    proc = train(cfg, work)
    check_ok(proc)
    losses = logged_losses(str(work))
    assert sorted(losses) == [1, 2]
    assert all(math.isfinite(v) and v > 0 for v in losses.values())
    # the run used the plugin's head, imported by the config
    dumped = Config.fromfile(str(work / 'hardneg_tiny.py'))
    assert dumped.model.head.type == 'HardNegativeInfoNCEHead'
    assert dumped.custom_imports.imports == [
        'projects.hard_negatives.hard_negatives']
    assert 'projects' not in open(osp.join(ROOT, 'mmmask', '__init__.py')
                                  ).read()


def _fresh_class(name, module='my_plugin.heads'):
    return type(name, (torch.nn.Module, ), {'__module__': module})


def test_name_clash_is_an_error_unless_forced():
    # a name mmmask's registry holds
    with pytest.raises(NameClashError) as info:
        MODELS.register_module(module=_fresh_class('InfoNCEHead'))
    msg = str(info.value)
    assert "'InfoNCEHead'" in msg and 'my_plugin.heads.InfoNCEHead' in msg
    assert 'mmmask.models.heads.info_nce_head.InfoNCEHead' in msg
    assert 'force=True' in msg
    assert MODELS.get('InfoNCEHead').__module__.startswith('mmmask.')

    # a plugin may not silently shadow a parent's (mmpretrain's) name
    with pytest.raises(NameClashError, match='registered in mmpretrain'):
        MODELS.register_module(module=_fresh_class('ContrastiveHead'))
    assert MODELS.get('ContrastiveHead').__module__.startswith('mmpretrain.')

    # force=True replaces; registering the same object twice is harmless
    forced = _fresh_class('ContrastiveHead')
    try:
        MODELS.register_module(module=forced, force=True)
        assert MODELS.get('ContrastiveHead') is forced
    finally:
        MODELS._module_dict.pop('ContrastiveHead', None)
    assert MODELS.get('ContrastiveHead').__module__.startswith('mmpretrain.')
    new = _fresh_class('BrandNewTestHead')
    try:
        MODELS.register_module(module=new)
        MODELS.register_module(module=new)
        assert MODELS.get('BrandNewTestHead') is new
    finally:
        MODELS._module_dict.pop('BrandNewTestHead', None)
