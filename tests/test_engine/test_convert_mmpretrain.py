"""mmpretrain <-> mmmask checkpoint conversion (MoCo v2 and DenseCL)."""
import pytest
import torch
from helpers import (TINY_C5, build_mmmask_model, build_mmpretrain_model,
                     contrastive_cfg, tiny_resnet18)

import mmpretrain.models  # noqa: F401  (registers mmpretrain's models)
import mmmask.models  # noqa: F401
from mmmask.engine.checkpoint.convert_mmpretrain import (
    convert_checkpoint, convert_state_dict, detect_method,
    mmmask_to_mmpretrain, mmpretrain_to_mmmask, momentum_from_mmpretrain,
    momentum_to_mmpretrain)

METHODS = ['mocov2', 'densecl']
QUEUE_LEN, FEAT_DIM, C5 = 32, 16, TINY_C5
NECK = dict(in_channels=C5, hid_channels=32, out_channels=FEAT_DIM)


def build_mmpretrain(method):
    return build_mmpretrain_model(contrastive_cfg(
        'mmpretrain', method, NECK, backbone=tiny_resnet18(),
        queue_len=QUEUE_LEN, feat_dim=FEAT_DIM, momentum=0.001))


def build_mmmask(method):
    return build_mmmask_model(contrastive_cfg(
        'mmmask', method, NECK, backbone=tiny_resnet18(),
        queue_len=QUEUE_LEN, feat_dim=FEAT_DIM,
        momentum=momentum_from_mmpretrain(0.001)))


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    out = {}
    for method in METHODS:
        ref = build_mmpretrain(method)
        # non-trivial pointers and EMA step count survive the conversion
        ref.queue_ptr.fill_(8)
        ref.encoder_k.steps.fill_(5)
        if method == 'densecl':
            ref.queue2_ptr.fill_(12)
        out[method] = (ref, build_mmmask(method))
    return out


def assert_state_dicts_equal(a, b):
    assert list(a) == list(b)
    for key in a:
        assert a[key].shape == b[key].shape, key
        assert a[key].dtype == b[key].dtype, key
        assert torch.equal(a[key], b[key]), key


def test_momentum_conventions():
    assert momentum_from_mmpretrain(0.001) == pytest.approx(0.999)
    assert momentum_to_mmpretrain(0.999) == pytest.approx(0.001)
    assert momentum_to_mmpretrain(momentum_from_mmpretrain(0.25)) == 0.25


@pytest.mark.parametrize('method', METHODS)
def test_round_trip_from_mmpretrain(models, method):
    ref, _ = models[method]
    sd = ref.state_dict()
    ours = mmpretrain_to_mmmask(sd, method)
    back = mmmask_to_mmpretrain(ours, method)
    assert_state_dicts_equal(back, sd)


@pytest.mark.parametrize('method', METHODS)
def test_round_trip_from_mmmask(models, method):
    _, model = models[method]
    sd = model.state_dict()
    assert_state_dicts_equal(
        mmpretrain_to_mmmask(mmmask_to_mmpretrain(sd, method), method), sd)


@pytest.mark.parametrize('method', METHODS)
def test_converted_mmpretrain_loads_strictly_and_back(models, method):
    ref, model = models[method]
    sd = ref.state_dict()
    model.load_state_dict(mmpretrain_to_mmmask(sd, method), strict=True)

    # layouts: queue transposed, pointers and step count 0-dim
    assert torch.equal(model.queue.feats, sd['queue'].t())
    assert model.queue.ptr.shape == () and int(model.queue.ptr) == 8
    assert model.key_encoder.num_updates.shape == ()
    assert int(model.key_encoder.num_updates) == 5
    if method == 'densecl':
        assert torch.equal(model.dense_queue.feats, sd['queue2'].t())
        assert int(model.dense_queue.ptr) == 12
        assert torch.equal(model.neck.dense_mlp[2].weight,
                           ref.neck.mlp2[2].weight)
        assert torch.equal(model.key_encoder.neck.global_mlp[0].bias,
                           ref.encoder_k.module[1].mlp[0].bias)
    else:
        assert torch.equal(model.neck.mlp[0].weight, ref.neck.mlp[0].weight)
    assert torch.equal(model.key_encoder.backbone.conv1.weight,
                       ref.encoder_k.module[0].conv1.weight)
    assert torch.equal(model.backbone.layer4[1].bn2.running_var,
                       ref.backbone.layer4[1].bn2.running_var)

    # and back into a fresh mmpretrain model
    fresh = build_mmpretrain(method)
    fresh.load_state_dict(mmmask_to_mmpretrain(model.state_dict(), method),
                          strict=True)
    assert_state_dicts_equal(fresh.state_dict(), sd)
    assert fresh.queue_ptr.shape == (1, )


@pytest.mark.parametrize('method', METHODS)
def test_detect_method(models, method):
    ref, model = models[method]
    assert detect_method(ref.state_dict()) == method
    assert detect_method(model.state_dict()) == method
    ours = convert_state_dict(ref.state_dict(), 'mmpretrain2mmmask')
    assert set(ours) == set(model.state_dict())


def test_unknown_keys_raise_and_name_them(models):
    sd = dict(models['mocov2'][0].state_dict())
    sd['head.extra'] = torch.zeros(1)
    sd['foo.bar'] = torch.zeros(2)
    with pytest.raises(KeyError) as info:
        mmpretrain_to_mmmask(sd, 'mocov2')
    assert 'head.extra' in str(info.value) and 'foo.bar' in str(info.value)

    with pytest.warns(UserWarning, match='foo.bar'):
        ours = mmpretrain_to_mmmask(sd, 'mocov2', strict=False)
    assert torch.equal(ours['foo.bar'], sd['foo.bar'])
    with pytest.warns(UserWarning):
        back = mmmask_to_mmpretrain(ours, 'mocov2', strict=False)
    assert set(back) == set(sd)


def test_wrong_method_raises(models):
    """A DenseCL state_dict converted as MoCo v2 names the keys that do not
    fit (the second queue, the dense branch)."""
    with pytest.raises(KeyError, match='queue2'):
        mmpretrain_to_mmmask(models['densecl'][0].state_dict(), 'mocov2')
    with pytest.raises(KeyError, match='dense_mlp'):
        mmmask_to_mmpretrain(models['densecl'][1].state_dict(), 'mocov2')
    with pytest.raises(ValueError, match='method'):
        mmpretrain_to_mmmask({}, 'simclr')


def test_mmpretrain_layout_rejected_by_reverse(models):
    """Feeding the wrong layout to a direction fails loudly."""
    with pytest.raises(KeyError, match='encoder_k'):
        mmmask_to_mmpretrain(models['mocov2'][0].state_dict(), 'mocov2')


def _fake_checkpoint(state_dict):
    return dict(meta=dict(epoch=3, iter=30, seed=0,
                          dataset_meta=dict(classes=None)),
                state_dict=state_dict,
                optimizer=dict(state={}, param_groups=[dict(lr=0.03)]),
                message_hub=dict(runtime_info=dict(iter=30)),
                param_schedulers=[dict(last_step=30)])


@pytest.mark.parametrize('method', METHODS)
def test_convert_checkpoint_file(models, method, tmp_path):
    ref, model = models[method]
    src = tmp_path / 'ref.pth'
    torch.save(_fake_checkpoint(ref.state_dict()), src)
    dst = tmp_path / 'sub' / 'ours.pth'
    convert_checkpoint(str(src), str(dst), 'mmpretrain2mmmask')
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert set(ckpt) == {'meta', 'state_dict'}  # training state dropped
    assert ckpt['meta']['epoch'] == 3 and ckpt['meta']['iter'] == 30
    assert ckpt['meta']['mmmask_conversion']['method'] == method
    model.load_state_dict(ckpt['state_dict'], strict=True)

    back_path = tmp_path / 'back.pth'
    convert_checkpoint(str(dst), str(back_path), 'mmmask2mmpretrain')
    back = torch.load(back_path, map_location='cpu', weights_only=True)
    assert_state_dicts_equal(back['state_dict'], ref.state_dict())

    with pytest.warns(UserWarning, match='optimizer'):
        kept = convert_checkpoint(str(src), str(tmp_path / 'kept.pth'),
                                  'to_mmmask', method=method,
                                  keep_training_state=True)
    assert {'optimizer', 'message_hub', 'param_schedulers'} <= set(kept)


def test_convert_mmengine_training_checkpoint(models, tmp_path):
    """A checkpoint as mmengine's Runner writes it (HistoryBuffer and numpy
    values in message_hub) loads weights-only and converts; its training
    state is dropped."""
    import numpy as np
    from mmengine.logging import HistoryBuffer
    ref, model = models['mocov2']
    ckpt = _fake_checkpoint(ref.state_dict())
    ckpt['message_hub'] = dict(
        log_scalars={'train/loss': HistoryBuffer([1.0, 0.5], [1, 1])},
        runtime_info=dict(iter=np.int64(30)), resumed_keys={})
    src = tmp_path / 'runner.pth'
    torch.save(ckpt, src)
    out = convert_checkpoint(str(src), str(tmp_path / 'o.pth'), 'to_mmmask')
    assert set(out) == {'meta', 'state_dict'}
    model.load_state_dict(out['state_dict'], strict=True)


def test_convert_bare_state_dict_and_ema(models, tmp_path):
    ref, model = models['densecl']
    src = tmp_path / 'bare.pth'
    torch.save(ref.state_dict(), src)
    out = convert_checkpoint(str(src), str(tmp_path / 'o.pth'), 'to_mmmask')
    assert set(out) == set(model.state_dict())

    # mmengine's EMAHook: {'steps', 'module.<model key>'}
    ema = {'steps': torch.tensor(4)}
    ema.update(('module.' + k, v) for k, v in ref.state_dict().items())
    ckpt = dict(meta={}, state_dict=ref.state_dict(), ema_state_dict=ema)
    torch.save(ckpt, src)
    out = convert_checkpoint(str(src), str(tmp_path / 'o.pth'), 'to_mmmask')
    assert 'module.dense_queue.feats' in out['ema_state_dict']
    assert 'module.encoder_k.steps' not in out['ema_state_dict']
    assert int(out['ema_state_dict']['steps']) == 4


def _load_cli():
    from tools.model_converters import mmpretrain2mmmask
    return mmpretrain2mmmask


@pytest.mark.parametrize('method', METHODS)
def test_cli_auto_detects_and_reverses(models, method, tmp_path, capsys):
    cli = _load_cli()
    ref, model = models[method]
    src, dst, back = (str(tmp_path / n) for n in ('a.pth', 'b.pth', 'c.pth'))
    torch.save(_fake_checkpoint(ref.state_dict()), src)
    assert cli.main([src, dst]) == 0
    assert f'method={method}' in capsys.readouterr().out
    model.load_state_dict(torch.load(dst, weights_only=True)['state_dict'],
                          strict=True)
    assert cli.main([dst, back, '--reverse', '--method', method]) == 0
    assert_state_dicts_equal(
        torch.load(back, weights_only=True)['state_dict'], ref.state_dict())
    # the wrong method: a clear error, exit code 1
    wrong = 'mocov2' if method == 'densecl' else 'densecl'
    if method == 'densecl':
        assert cli.main([src, dst, '--method', wrong]) == 1
        assert 'queue2' in capsys.readouterr().err
