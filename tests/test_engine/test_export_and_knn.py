"""Weight export (tools/model_converters/extract_backbone_weights.py),
weighted kNN (mmmask.evaluation.knn), the online kNN hook and the load
report (mmmask.engine.checkpoint.transfer)."""
import glob
import json
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import ROOT

EXTRACT = osp.join(ROOT, 'tools', 'model_converters',
                   'extract_backbone_weights.py')


def _densecl(depth):
    import mmmask.models  # noqa: F401
    from mmmask.registry import MODELS
    ch = 512 if depth == 18 else 2048
    model = MODELS.build(dict(
        type='DenseCL', queue_len=8, feat_dim=16,
        backbone=dict(type='ResNet', depth=depth, out_indices=(3, )),
        neck=dict(type='DenseProjectionNeck', in_channels=ch,
                  hid_channels=32, out_channels=16, num_grid=None),
        head=dict(type='InfoNCEHead', temperature=0.2)))
    torch.manual_seed(depth)
    with torch.no_grad():  # non-trivial BN statistics and affine terms
        for name, t in model.backbone.state_dict().items():
            if t.is_floating_point() and ('bn' in name
                                          or 'downsample.1' in name):
                t.copy_(torch.rand_like(t) + 0.5)
    return model


def _extract(src, dst, *args):
    proc = subprocess.run([sys.executable, EXTRACT, src, dst, *args],
                          cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    return proc


# --------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------
@pytest.mark.parametrize('depth', [18, 50])
def test_torchvision_export_gives_same_features(depth, tmp_path):
    import torchvision
    model = _densecl(depth)
    src = str(tmp_path / 'mmmask.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'iter': 2}}, src)
    dst = str(tmp_path / 'tv.pth')
    proc = _extract(src, dst, '--to', 'torchvision')
    assert proc.returncode == 0, proc.stderr
    state = torch.load(dst, weights_only=True)
    tv = getattr(torchvision.models, f'resnet{depth}')()
    missing, unexpected = tv.load_state_dict(state, strict=False)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected

    x = torch.randn(2, 3, 64, 64)
    model.backbone.eval()
    tv.eval()
    with torch.no_grad():
        ours = model.backbone(x)[-1]
        h = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        theirs = tv.layer4(tv.layer3(tv.layer2(tv.layer1(h))))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_timm_export(tmp_path):
    timm = pytest.importorskip('timm')
    model = _densecl(18)
    src = str(tmp_path / 'mmmask.pth')
    torch.save({'state_dict': model.state_dict()}, src)
    dst = str(tmp_path / 'timm.pth')
    assert _extract(src, dst, '--to', 'timm').returncode == 0
    net = timm.create_model('resnet18', pretrained=False)
    missing, unexpected = net.load_state_dict(
        torch.load(dst, weights_only=True), strict=False)
    assert sorted(missing) == ['fc.bias', 'fc.weight'] and not unexpected


def test_openmmlab_export_keeps_only_the_query_backbone(tmp_path):
    model = _densecl(18)
    src = str(tmp_path / 'mmmask.pth')
    torch.save({'state_dict': model.state_dict()}, src)
    dst = str(tmp_path / 'bb.pth')
    assert _extract(src, dst).returncode == 0
    out = torch.load(dst, weights_only=True)
    want = {f'backbone.{k}': v for k, v in model.backbone.state_dict().items()}
    assert set(out['state_dict']) == set(want)
    for k, v in want.items():
        assert torch.equal(out['state_dict'][k], v)
    assert out['meta']['prefix'] == 'backbone.'
    dst2 = str(tmp_path / 'bare.pth')
    assert _extract(src, dst2, '--strip-prefix').returncode == 0
    bare = torch.load(dst2, weights_only=True)['state_dict']
    assert set(bare) == set(model.backbone.state_dict())


def test_export_refuses_non_resnet_layouts(tmp_path):
    src = str(tmp_path / 'deep.pth')
    torch.save({'state_dict': {'backbone.stem.0.weight': torch.zeros(1),
                               'backbone.layer1.0.conv1.weight':
                               torch.zeros(1)}}, src)
    proc = _extract(src, str(tmp_path / 'x.pth'), '--to', 'torchvision')
    assert proc.returncode == 2 and 'deep-stem' in proc.stderr
    torch.save({'state_dict': {'neck.fc.weight': torch.zeros(1)}}, src)
    proc = _extract(src, str(tmp_path / 'x.pth'))
    assert proc.returncode == 2 and "no 'backbone.*' tensors" in proc.stderr


# --------------------------------------------------------------------------
# load report
# --------------------------------------------------------------------------
def test_load_report_and_wrong_architecture(tmp_path):
    from mmpretrain.models.backbones import ResNet

    from mmmask.engine.checkpoint.transfer import (
        PretrainedMismatchError, load_pretrained)
    model = _densecl(18)
    ckpt = str(tmp_path / 'ck.pth')
    torch.save({'state_dict': model.state_dict()}, ckpt)
    target = ResNet(depth=18)
    lines = []
    report = load_pretrained(target, ckpt, logger=lines.append)
    assert report.ok and len(report.loaded) == report.total == 100
    assert lines and '100/100 tensors loaded' in lines[0]
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(target.state_dict()[k], v)
    # a DDP wrapper's 'module.' before the prefix: reported and loaded alike
    wrapped = str(tmp_path / 'ddp.pth')
    torch.save({'state_dict': {f'module.{k}': v for k, v in
                               model.state_dict().items()}}, wrapped)
    target = ResNet(depth=18)
    report = load_pretrained(target, wrapped, logger=None)
    assert report.ok and len(report.loaded) == 100
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(target.state_dict()[k], v)
    with pytest.raises(PretrainedMismatchError,
                       match=r'shape mismatch.*layer1\.0\.conv1\.weight'):
        load_pretrained(ResNet(depth=50), ckpt, logger=None)
    with pytest.raises(PretrainedMismatchError, match='no tensor of'):
        load_pretrained(ResNet(depth=18), ckpt, prefix='encoder.',
                        logger=None)


# --------------------------------------------------------------------------
# kNN
# --------------------------------------------------------------------------
def _brute_force_knn(train_x, train_y, test_x, k, t, num_classes):
    train = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    preds = []
    for x in test_x:
        sim = train @ (x / np.linalg.norm(x))
        idx = np.argsort(-sim, kind='stable')[:k]
        votes = np.zeros(num_classes)
        for i in idx:
            votes[train_y[i]] += np.exp(sim[i] / t)
        preds.append(int(np.argmax(votes)))
    return np.array(preds)


def test_weighted_knn_on_digits_matches_brute_force():
    from sklearn.datasets import load_digits

    from mmmask.evaluation.knn import knn_accuracy, weighted_knn_scores
    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float64) + 1e-3  # raw pixels; no all-zero rows
    rng = np.random.RandomState(0)
    order = rng.permutation(len(y))
    tr, te = order[:1200], order[1200:]
    k, t = 20, 0.07
    expected = _brute_force_knn(x[tr], y[tr], x[te], k, t, 10)
    scores = weighted_knn_scores(torch.from_numpy(x[tr]),
                                 torch.from_numpy(y[tr]),
                                 torch.from_numpy(x[te]), 10, k, t,
                                 chunk_size=100)
    np.testing.assert_array_equal(scores.argmax(1).numpy(), expected)
    acc = knn_accuracy(torch.from_numpy(x[tr]), torch.from_numpy(y[tr]),
                       torch.from_numpy(x[te]), torch.from_numpy(y[te]),
                       k=k, temperature=t)
    assert acc['top1'] == pytest.approx(
        100 * np.mean(expected == y[te]), abs=1e-4)
    assert acc['top1'] > 95  # raw-pixel kNN on digits is ~98 %
    assert acc['top5'] >= acc['top1']


def _write_digit_images(root, per_class):
    from PIL import Image
    from sklearn.datasets import load_digits
    digits = load_digits()
    counts = {}
    for img, label in zip(digits.images, digits.target):
        if counts.get(label, 0) >= per_class:
            continue
        counts[label] = counts.get(label, 0) + 1
        d = osp.join(root, str(label))
        os.makedirs(d, exist_ok=True)
        arr = (img * 255 / 16).astype(np.uint8)
        Image.fromarray(arr).convert('RGB').resize((32, 32)).save(
            osp.join(d, f'{counts[label]}.png'))


def test_online_knn_hook_logs_during_a_short_run(tmp_path):
    from mmengine.runner import Runner

    import mmmask.models  # noqa: F401
    from mmmask.engine.hooks.online_knn import OnlineKNNHook  # noqa: F401
    root = str(tmp_path / 'digits')
    _write_digit_images(root, per_class=4)
    view = [dict(type='RandomResizedCrop', scale=32, backend='pillow')]
    pretrain_set = dict(
        type='CustomDataset', data_root=root, with_label=False,
        pipeline=[dict(type='LoadImageFromFile'),
                  dict(type='MultiView', num_views=2, transforms=[view]),
                  dict(type='PackInputs')])
    knn_loader = dict(
        batch_size=8, num_workers=0,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        dataset=dict(type='CustomDataset', data_root=root,
                     pipeline=[dict(type='LoadImageFromFile'),
                               dict(type='PackInputs')]))
    runner = Runner(
        model=dict(type='DenseCL', queue_len=8, feat_dim=16,
                   data_preprocessor=dict(
                       type='SelfSupDataPreprocessor',
                       mean=[123.675, 116.28, 103.53],
                       std=[58.395, 57.12, 57.375], to_rgb=True),
                   backbone=dict(type='ResNet', depth=18, out_indices=(3, )),
                   neck=dict(type='DenseProjectionNeck', in_channels=512,
                             hid_channels=32, out_channels=16,
                             num_grid=None),
                   head=dict(type='InfoNCEHead', temperature=0.2)),
        work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(
            batch_size=4, num_workers=0,
            sampler=dict(type='DefaultSampler', shuffle=True),
            collate_fn=dict(type='default_collate'), dataset=pretrain_set),
        train_cfg=dict(by_epoch=False, max_iters=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        custom_hooks=[dict(type='OnlineKNNHook', train_dataloader=knn_loader,
                           val_dataloader=knn_loader, interval=2,
                           by_epoch=False, k=5)],
        default_hooks=dict(logger=dict(type='LoggerHook', interval=1),
                           checkpoint=None),
        default_scope='mmmask')
    runner.train()
    top1 = runner.message_hub.get_scalar('knn/top1').current()
    assert 0 <= top1 <= 100
    assert runner.message_hub.get_scalar('knn/top5').current() >= top1
    scalars = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(scalars) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    assert any('knn/top1' in r and r['step'] == 2 for r in rows), rows


def test_knn_eval_tool_end_to_end(tmp_path):
    """tools/analysis_tools/knn_eval.py on a labelled digits folder: loads
    the backbone from a checkpoint and gives the accuracy of a direct
    computation on the same features."""
    import torch

    from mmmask.evaluation.knn import knn_accuracy
    from mmmask.registry import MODELS
    root = str(tmp_path / 'digits')
    _write_digit_images(root, per_class=6)
    torch.manual_seed(0)
    backbone_cfg = dict(type='ResNet', depth=18, stem_channels=16,
                        base_channels=16, out_indices=(3, ),
                        zero_init_residual=False)
    backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    ckpt = str(tmp_path / 'ckpt.pth')
    torch.save(dict(state_dict={f'backbone.{k}': v for k, v in
                                backbone.state_dict().items()}), ckpt)
    loader = dict(batch_size=8, num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  collate_fn=dict(type='default_collate'),
                  dataset=dict(type='CustomDataset', data_root=root,
                               pipeline=[dict(type='LoadImageFromFile'),
                                         dict(type='PackInputs')]))
    config = tmp_path / 'knn_digits.py'
    config.write_text(
        f'default_scope = "mmpretrain"\n'
        f'model = dict(type="ImageClassifier", backbone={backbone_cfg!r}, '
        f'data_preprocessor=dict(mean=[0., 0., 0.], std=[255., 255., 255.],'
        f' to_rgb=True))\n'
        f'train_dataloader = {loader!r}\nval_dataloader = {loader!r}\n')
    from tools.analysis_tools import knn_eval
    acc = knn_eval.main([str(config), ckpt, '--k', '5'])

    # direct computation: same images, same weights, same normalisation
    from PIL import Image
    paths = sorted(glob.glob(osp.join(root, '*', '*.png')))
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert('RGB'))
                                      .copy()).permute(2, 0, 1)
                     for p in paths]).float() / 255.
    y = torch.tensor([int(osp.basename(osp.dirname(p))) for p in paths])
    backbone.eval()
    with torch.no_grad():
        feats = backbone(x)[-1].mean((2, 3))
    expected = knn_accuracy(feats, y, feats, y, k=5, temperature=0.07)
    assert acc['top1'] == pytest.approx(expected['top1'], abs=1e-6)
    assert acc['top1'] > 50  # each image is its own nearest neighbour


def test_online_knn_normalisation_comes_from_public_settings():
    """mean / std from the preprocessor's buffers, to_rgb from its config
    (no private attribute of the preprocessor is read)."""
    from mmmask.engine.hooks.online_knn import OnlineKNNHook

    class Pre(torch.nn.Module):  # no _channel_conversion attribute
        def __init__(self):
            super().__init__()
            self.register_buffer('mean', torch.tensor([1., 2., 3.]))
            self.register_buffer('std', torch.tensor([4., 5., 6.]))

    model = torch.nn.Module()
    model.data_preprocessor = Pre()
    hook = OnlineKNNHook(train_dataloader={}, val_dataloader={})
    assert hook._normalisation(model, dict(to_rgb=True)) == (
        [1., 2., 3.], [4., 5., 6.], True)
    assert hook._normalisation(model, dict(bgr_to_rgb=True))[2] is True
    assert hook._normalisation(model, None)[2] is False
    own = OnlineKNNHook(train_dataloader={}, val_dataloader={}, to_rgb=False)
    assert own._normalisation(model, dict(to_rgb=True))[2] is False
