"""The benchmark scripts run on their smallest setting and print full tables
of finite numbers (no timing thresholds here: speed goals live in the
scripts' output, see docs/benchmarks.md)."""
import importlib
import math
import os.path as osp
import re

import pytest
import torch
from helpers import ROOT


def _load(name):
    return importlib.import_module(f'tools.benchmarks.{name}')


def _table_rows(text, first_cell):
    return [ln for ln in text.splitlines()
            if ln.startswith('| ') and ln.split('|')[1].strip() in first_cell]


def test_train_speed_smallest_setting(capsys, tmp_path):
    bench = _load('train_speed')
    rows = bench.main(['--depth', '18', '--img', '32', '--batch', '4',
                       '--queue-len', '64', '--repeats', '1', '--warmup', '0',
                       '--workers', '0', '--data-batches', '1',
                       '--skip-memory', '--threads', '1'])
    out = capsys.readouterr().out
    step_rows = _table_rows(out, {'mocov2', 'densecl'})
    # 3 variants x 2 methods in the step table + 2 rows of ratios
    assert len(step_rows) == 8, out
    for method in ('mocov2', 'densecl'):
        for key in ('vs_mmpretrain', 'vs_floor', 'data', 'model',
                    'data_vs_model'):
            assert math.isfinite(rows[method][key]) and rows[method][key] > 0
    assert math.isfinite(rows['densecl_vs_mocov2'])
    for ln in step_rows[:6]:
        assert float(ln.split('|')[3]) > 0  # the median seconds per step


def test_train_speed_memory_probe(capsys):
    """The CPU peak-RSS probes (one fresh process per variant) print a
    finite memory column and ratio."""
    bench = _load('train_speed')
    rows = bench.main(['--methods', 'mocov2', '--depth', '18', '--img', '32',
                       '--batch', '2', '--queue-len', '16', '--repeats', '1',
                       '--warmup', '0', '--skip-data', '--threads', '1'])
    out = capsys.readouterr().out
    step_rows = _table_rows(out, {'mocov2'})
    assert len(step_rows) == 4, out
    for ln in step_rows[:3]:  # the peak RSS of each variant, in MiB
        assert float(ln.split('|')[5]) > 0
    assert math.isfinite(rows['mocov2']['mem']) and rows['mocov2']['mem'] > 0


def test_train_speed_supervised_step(capsys):
    """``--supervised``: images/s of a supervised step of the same ResNet,
    and each method's images/s against it / 1.3 (issue 17's GPU goal)."""
    bench = _load('train_speed')
    rows = bench.main(['--methods', 'mocov2', '--depth', '18', '--img', '32',
                       '--batch', '2', '--queue-len', '16', '--repeats', '1',
                       '--warmup', '0', '--skip-data', '--skip-memory',
                       '--threads', '1', '--supervised'])
    out = capsys.readouterr().out
    sup = rows['supervised_img_s']
    assert math.isfinite(sup) and sup > 0
    assert rows['mocov2']['vs_supervised'] == rows['mocov2']['model'] / (
        sup / 1.3)
    assert f'supervised ResNet-18 step (mmpretrain ImageClassifier): ' \
        f'{sup:.1f} img/s' in out
    assert re.search(r'mocov2: [0-9.]+ img/s = [0-9.]+ x \(supervised / 1.3\)',
                     out), out


# learning_signal's smallest setting (each test adds its budget / methods)
TINY = ['--batch', '8', '--queue-len', '16', '--shot-draws', '1',
        '--threads', '1']
TINY_RESNET = TINY + ['--base-channels', '8']


def test_learning_signal_smallest_setting(capsys):
    bench = _load('learning_signal')
    rows = bench.main(['--steps', '1'] + TINY_RESNET)
    out = capsys.readouterr().out
    names = (['random init'] + list(bench.DEFAULT_METHODS) +
             ['supervised (upper bound)'])
    assert [r['name'] for r in rows] == names
    table = _table_rows(out, set(names))
    assert len(table) == len(names)
    for ln in table:
        cells = [c.strip() for c in ln.split('|')[2:-1]]
        assert len(cells) == 6
        for c in cells[3:]:
            assert math.isfinite(float(re.sub('[+%]', '', c)))
    for r in rows:
        assert 0 <= r['few'] <= 100 and 0 <= r['full'] <= 100


def test_learning_signal_moco_extensions_get_moco_v2s_step_count(capsys):
    """By default saliency-guided MoCo v2 and MaskCo train for as many steps
    as mmmask's MoCo v2 made in its wall-clock budget."""
    bench = _load('learning_signal')
    methods = ['mmmask-mocov2', 'mmmask-saliency_mocov2', 'mmmask-maskco']
    rows = bench.main(['--budget-s', '1.5', '--supervised-budget-s', '0.1']
                      + TINY_RESNET + ['--methods'] + methods)
    by_name = {r['name']: r for r in rows}
    moco = by_name['mmmask-mocov2']
    assert moco['budget'] == '1.5 s' and moco['steps'] >= 1
    for name in methods[1:]:
        assert by_name[name]['steps'] == moco['steps']
        assert by_name[name]['budget'] == f"{moco['steps']} steps"
    assert f"| mmmask-maskco | {moco['steps']} steps |" in \
        capsys.readouterr().out


def test_learning_signal_vit_methods_smallest_setting(capsys):
    bench = _load('learning_signal')
    rows = bench.main(['--steps', '1', '--vit-dims', '32', '--vit-layers',
                       '1', '--supervised-budget-s', '0.1'] + TINY +
                      ['--methods'] + list(bench.VIT_METHODS))
    out = capsys.readouterr().out
    names = (['random init (ViT)'] + list(bench.VIT_METHODS) +
             ['supervised (ViT) (upper bound)'])
    assert [r['name'] for r in rows] == names
    assert len(_table_rows(out, set(names))) == len(names)
    for r in rows:
        assert 0 <= r['few'] <= 100 and 0 <= r['full'] <= 100
        assert math.isfinite(r['gain'])
    assert rows[0]['gain'] == 0.0


def test_learning_signal_train_seed_and_supervised_budget(capsys):
    """--train-seed moves the training (the random-init row is a different
    backbone) on the same split; an explicit --supervised-budget-s bounds
    the supervised row also under --steps."""
    bench = _load('learning_signal')
    common = ['--steps', '1', '--methods', 'mmmask-mocov2',
              '--supervised-budget-s', '0.2'] + TINY_RESNET
    rows = bench.main(common + ['--train-seed', '1'])
    assert rows[1]['budget'] == '1 steps' and rows[1]['steps'] == 1
    assert rows[-1]['budget'] == '0.2 s' and rows[-1]['steps'] >= 1
    assert 'split seed 0, train seed 1' in capsys.readouterr().out
    # the initial weights follow the train seed, the split follows --seed
    nets = [bench.random_backbone(bench.parse_args(common + [
        '--train-seed', str(s)])) for s in (0, 1)]
    w = [n.state_dict()['conv1.weight'] for n in nets]
    assert not torch.equal(w[0], w[1])
    args = bench.parse_args(common + ['--train-seed', '1'])
    assert bench.train_seed(args) == 1 and args.seed == 0


def test_learning_signal_learning_curve(capsys):
    """--eval-every N evaluates every N steps and prints the curve."""
    bench = _load('learning_signal')
    rows = bench.main(['--steps', '2', '--eval-every', '1', '--methods',
                       'mmmask-mocov2', '--supervised-budget-s', '0.1'] +
                      TINY_RESNET)
    moco = rows[1]
    assert [c[0] for c in moco['curve']] == [1, 2]
    # the last point of the curve is the row's own evaluation
    assert moco['curve'][-1][2] == moco['few']
    out = capsys.readouterr().out
    assert len(_table_rows(out, {'mmmask-mocov2'})) == 3  # row + 2 points


def test_learning_signal_models_come_from_the_configs():
    """Each mmmask method's model is its config's ``model`` (demo config or
    recipe) with the benchmark's overrides; no data preprocessor (the views
    come from the device stage of the view configs)."""
    from mmengine.config import Config
    bench = _load('learning_signal')
    args = bench.parse_args(TINY_RESNET + ['--feat-dim', '16'])
    for method, path in bench.METHOD_CONFIGS.items():
        ref = Config.fromfile(osp.join(ROOT, path)).model
        cfg = bench.method_cfg(method, args)
        kind = 'vit' if method in ('cmae', 'macrl') else 'resnet'
        assert cfg['type'] == ref.type
        assert 'data_preprocessor' not in cfg
        assert cfg['backbone'] == bench.backbone_cfg(args, kind)
        assert cfg['momentum'] == 0.99
        if 'queue_len' in ref:
            assert (cfg['queue_len'], cfg['feat_dim']) == (16, 16)
        for key in set(ref) - {'data_preprocessor', 'backbone', 'momentum',
                               'queue_len', 'feat_dim'}:
            # the rest is the config's, or the config's part updated
            assert key in cfg
            if not isinstance(ref[key], dict):
                assert cfg[key] == ref[key] or key in (
                    'saliency_layer', ), (method, key)
            elif cfg[key].get('type', ref[key].get('type')) == \
                    ref[key].get('type'):
                assert set(ref[key]) <= set(cfg[key]), (method, key)


def test_learning_signal_views_use_the_device_stage():
    """The views' device stage is ViewAugmentDataPreprocessor with the
    configs' view_augments; crops are uint8 boxes of scale 0.4-1."""
    from mmengine.config import Config
    bench = _load('learning_signal')
    ops = Config.fromfile(osp.join(
        ROOT, 'configs/_base_/datasets/mocov2_views.py')).view_augments
    views = bench.DeviceViews(size=16)
    stage = views.stage
    assert type(stage).__name__ == 'ViewAugmentDataPreprocessor'
    assert [type(op).__name__ for op in stage.view_augments[0]] == \
        [op['type'] for op in ops]
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    crop = views.crop(x)
    assert crop.dtype == torch.uint8 and crop.shape == (6, 3, 16, 16)
    b = views.crop_boxes(2000, 32, 32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) / 1024
    assert area.min() >= 0.35 and area.max() <= 1.0
    assert torch.equal(b, b.round()) and (b[:, 2:] <= 32).all()
    out, samples = views(x)
    assert samples is None and len(out) == 2 and out[0].dtype == torch.float32
    macrl = bench.MACRLViews(size=16).stage.view_augments
    assert [type(op).__name__ for op in macrl[1]] == ['BatchRandomFlip']
    cmae = bench.CMAEViews(size=16)
    assert cmae.stage.view_augments[0] == []
    online, target = cmae(x)[0]
    assert online.shape == target.shape == (6, 3, 16, 16)


def test_pipeline_speed_smallest_setting(capsys):
    bench = _load('pipeline_speed')
    rows = bench.main(['--images', '8', '--rounds', '1', '--batch', '4'])
    out = capsys.readouterr().out
    labels = set(bench.LABELS.values())
    table = _table_rows(out, labels)
    assert len(table) == 4 + 3, out  # speed rows + the cores rows
    for name in ('decode',) + bench.PER_IMAGE:
        assert math.isfinite(rows[name]['rate']) and rows[name]['rate'] > 0
    for name in bench.PER_IMAGE:
        assert math.isfinite(rows[name]['cores']) and rows[name]['cores'] > 0
    mean_diff, max_diff = rows['pixel_diff']
    assert 0 <= mean_diff <= max_diff < 1  # the same crops, PIL's filter
    device = [ln for ln in out.splitlines()
              if ln.startswith('| device stage')]
    assert len(device) == 1, out
    if rows['device_ms'] is None:
        assert 'not available' in device[0]
    else:
        assert math.isfinite(rows['device_ms']) and rows['device_ms'] > 0


def test_view_augment_speed_smallest_setting(capsys, tmp_path):
    import json
    bench = _load('view_augment_speed')
    out_json = tmp_path / 'stage.json'
    bench.main(['--batch', '2', '--size', '32', '--rounds', '1',
                '--cpu-chunks', '1', '--json', str(out_json)])
    out = capsys.readouterr().out
    ops = _table_rows(out, {'1'})
    assert len(ops) == 4 + 2, out  # 4 op rows, eager + cpu_chunk=1
    res = json.loads(out_json.read_text())
    assert [r['mode'] for r in res['stage']] == ['eager',
                                                 'eager, cpu_chunk=1']
    for row in res['stage'] + res['ops']:
        for key, value in row.items():
            if key.endswith('_ms') or key.startswith('ms_'):
                assert math.isfinite(value) and value > 0, row


def test_dense_signal_smallest_setting(capsys, tmp_path):
    """Methods pretrain, are fine-tuned through mmseg's runner (one process
    each) and get a row of finite mIoU in the table (MaskCo: the view
    geometry at another image size; mmpretrain's DenseCL: the other
    library)."""
    bench = _load('dense_signal')
    methods = ['random', 'mmmask-maskco', 'mmpretrain-densecl']
    rows = bench.main(['--methods'] + methods + ['--steps', '1', '--ft-iters', '2', '--num-train', '8',
                       '--num-val', '4', '--seeds', '0', '--batch', '4',
                       '--queue-len', '16', '--base-channels', '8',
                       '--ft-batch', '2', '--threads', '1', '--work-dir',
                       str(tmp_path)])
    out = capsys.readouterr().out
    assert list(rows) == methods
    table = _table_rows(out, set(methods))
    assert len(table) == len(methods), out
    for ln in table:
        miou = float(ln.split('|')[5])
        assert math.isfinite(miou) and 0 <= miou <= 100
    assert rows['mmmask-maskco']['steps'] == 1


def test_learning_signal_scaled_view_ops():
    """--view-ops scaled keeps the configs' ops but scales the blur's sigma
    range by view size / 224 and drops the flips (per view lists too);
    'config' leaves them as the config gives them."""
    from mmengine.config import Config
    bench = _load('learning_signal')
    ops = Config.fromfile(osp.join(
        ROOT, 'configs/_base_/datasets/mocov2_views.py')).view_augments
    scaled = bench.view_augments('mocov2', 'scaled', 32)
    macrl = bench.view_augments('macrl', 'scaled', 32)
    assert bench.view_augments('mocov2') == [dict(o) for o in ops]
    stage = bench.DeviceViews(size=32, view_ops='scaled').stage
    assert [type(op).__name__ for op in stage.view_augments[0]] == [
        o['type'] for o in scaled]
    assert [o['type'] for o in scaled] == [
        o['type'] for o in ops if o['type'] != 'BatchRandomFlip']
    blur = next(o for o in ops if o['type'] == 'BatchGaussianBlur')
    new = next(o for o in scaled if o['type'] == 'BatchGaussianBlur')
    assert new['sigma_range'] == pytest.approx(
        [s * 32 / 224 for s in blur['sigma_range']])
    assert all(o['type'] != 'BatchRandomFlip' for v in macrl for o in v)
