"""The built-in evaluation sets (mmmask/datasets/builtin.py), the per-pixel
ridge probe (mmmask/evaluation/dense_probe.py), OnlineDenseProbeHook and the
demo's before -> after kNN probe pieces."""
import os.path as osp
from types import SimpleNamespace
from unittest import mock

import numpy as np
import pytest
import torch
from torch import nn



def _tiny_resnet(seed=0):
    import mmpretrain.models  # noqa: F401

    from mmmask.registry import MODELS
    torch.manual_seed(seed)
    net = MODELS.build(dict(type='mmpretrain.ResNet', depth=18,
                            stem_channels=8, base_channels=8,
                            out_indices=(3, )))
    net.init_weights()
    return net


def _fake_runner(model):
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('test_dense_probe')
    return SimpleNamespace(model=model, message_hub=hub, iter=9, epoch=0,
                           visualizer=mock.MagicMock(),
                           logger=mock.MagicMock())


def test_demo_digit_indices_are_the_digits_make_demo_data_writes(demo_images):
    """The held-out probe digits are exactly those make_demo_data.py leaves
    out (checked against the files it writes)."""
    from PIL import Image

    from mmmask.datasets.builtin import (demo_digit_indices, held_out_digits,
                                         load_digits_uint8, upsample_digits)
    folder = demo_images
    written = np.stack([np.asarray(Image.open(osp.join(
        folder, 'digits', f'digit_{i:04d}.png')).convert('RGB'))
        for i in range(9)])  # 12 images: 3 photo crops + 9 digits
    images, _ = load_digits_uint8()
    idx = demo_digit_indices(num=12)
    assert np.array_equal(upsample_digits(images[idx], 64), written)
    held, labels = held_out_digits(64, num=12)
    assert len(held) == 1797 - 9 and len(labels) == len(held)
    flat = held.reshape(len(held), -1)
    for img in written.reshape(9, -1):
        assert not (flat == img).all(1).any()


def test_dense_digits_set_is_deterministic_and_labelled():
    from mmmask.datasets.builtin import dense_splits
    (x, y), (vx, vy) = dense_splits(6, 4, size=64, seed=3)
    (x2, y2), _ = dense_splits(6, 4, size=64, seed=3)
    assert x.shape == (6, 64, 64, 3) and x.dtype == np.uint8
    assert y.shape == (6, 64, 64) and vy.shape == (4, 64, 64)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert y.max() <= 10 and (y > 0).any() and (y == 0).mean() > 0.3
    # the label marks the ink: labelled pixels differ from the background
    (x3, _), _ = dense_splits(6, 4, size=64, seed=4)
    assert not np.array_equal(x, x3)


def test_ridge_probe_and_miou():
    from mmmask.evaluation.dense_probe import (dense_probe_miou,
                                               fit_ridge_probe, mean_iou)
    assert mean_iou(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 1]),
                    3)['miou'] == 1.0
    # class 0: IoU 1/2, class 1: 1/2 (class 2 absent: left out)
    assert mean_iou(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]),
                    3)['miou'] == pytest.approx(0.5)
    x = torch.randn(200, 4)
    y = (x[:, 0] > 0).long()
    w = fit_ridge_probe(x, y, 2, reg=1e-3)
    pred = (torch.cat([x, torch.ones(200, 1)], 1) @ w).argmax(1)
    assert (pred == y).float().mean() > 0.9
    feats = torch.randn(3, 5, 4, 4)
    labels = torch.zeros(3, 16, 16, dtype=torch.long)
    out = dense_probe_miou(feats, labels, feats, labels, 2)
    assert out['miou'] == 1.0 and out['acc'] == 1.0


def test_hook_is_registered_and_logs_a_deterministic_miou():
    from mmmask.engine.hooks import OnlineDenseProbeHook
    from mmmask.registry import HOOKS
    hook = HOOKS.build(dict(type='OnlineDenseProbeHook', interval=10,
                            num_train=8, num_val=8, image_size=64, grid=8))
    assert isinstance(hook, OnlineDenseProbeHook)
    model = SimpleNamespace(backbone=_tiny_resnet())
    runner = _fake_runner(model)
    hook.after_train_iter(runner, 0)  # iteration 10 of interval 10
    miou = runner.message_hub.get_scalar('dense/miou').current()
    assert 0.0 <= miou <= 1.0
    assert 0.0 <= runner.message_hub.get_scalar('dense/acc').current() <= 1
    runner.visualizer.add_scalars.assert_called_once()
    assert runner.visualizer.add_scalars.call_args.kwargs['step'] == 10
    assert 'dense/miou' in runner.logger.info.call_args.args[0]
    again = hook.evaluate(backbone=model.backbone)
    assert again['miou'] == miou
    runner.iter = 10  # iteration 11: not a multiple of 10
    hook.after_train_iter(runner, 0)
    assert runner.visualizer.add_scalars.call_count == 1


class _Stages(nn.Module):
    """A backbone whose ``layer4`` is ``fn`` of the image at stride 8."""

    def __init__(self, fn):
        super().__init__()
        self.stem = nn.AvgPool2d(8)
        self.layer4 = fn
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return (self.layer4(self.stem(x)), )


class _Constant(nn.Module):
    def forward(self, x):
        return torch.ones(x.shape[0], 4, *x.shape[2:])


def _colour_coded_set(seed, n=6, size=32, classes=4):
    """Label maps of random 8 px blocks; each class painted its own
    colour (+ noise)."""
    rng = np.random.default_rng(seed)
    palette = np.array([[20, 20, 20], [230, 30, 30], [30, 230, 30],
                        [30, 30, 230]])[:classes]
    blocks = rng.integers(0, classes, (n, size // 8, size // 8))
    labels = blocks.repeat(8, 1).repeat(8, 2)
    images = palette[labels] + rng.integers(-15, 16, labels.shape + (3, ))
    return images.clip(0, 255).astype(np.uint8), labels


def test_probe_separating_backbone_beats_constant_backbone():
    from mmmask.engine.hooks import OnlineDenseProbeHook
    data = (_colour_coded_set(0), _colour_coded_set(1))
    scores = {}
    for name, fn in (('separating', nn.Identity()), ('constant',
                                                     _Constant())):
        hook = OnlineDenseProbeHook(layers=('layer4', ), grid=4, data=data,
                                    mean=(0, 0, 0), std=(1, 1, 1))
        scores[name] = hook.evaluate(backbone=_Stages(fn))['miou']
    assert scores['separating'] > 0.9
    assert scores['constant'] < 0.3  # one class predicted everywhere


def test_hook_names_a_missing_layer():
    from mmmask.engine.hooks import OnlineDenseProbeHook
    hook = OnlineDenseProbeHook(layers=('layer9', ), grid=4,
                                data=(_colour_coded_set(0),
                                      _colour_coded_set(1)))
    with pytest.raises(ValueError, match="no submodule 'layer9'"):
        hook.evaluate(backbone=_Stages(nn.Identity()))


def test_few_shot_knn_accuracy():
    from mmmask.evaluation.knn import few_shot_knn_accuracy
    torch.manual_seed(0)
    feats = torch.eye(3).repeat(10, 1) + 0.01 * torch.randn(30, 3)
    labels = torch.arange(3).repeat(10)
    acc = few_shot_knn_accuracy(feats, labels, feats, labels, shots=2,
                                draws=3, k=2)
    assert acc == 100.0
    noise = torch.randn(30, 3)
    assert few_shot_knn_accuracy(noise, labels, noise.flip(0), labels,
                                 shots=2, draws=3, k=2) < 100.0


def _load_demo():
    from mmmask.apis import demo
    return demo


def test_demo_probe_before_and_after(tmp_path):
    """tools/demo.py's probe pieces: the held-out digits at the demo's image
    size, the seeded random-init backbone, a checkpoint's backbone loaded
    back, and kNN accuracies in [0, 100]."""
    demo = _load_demo()
    cfg = demo.load_config(['randomness.seed=3'])
    size = int(cfg.get('crop_size', 64))
    data = demo.probe_data(size)
    assert data[0].shape[1:] == (3, size, size) and data[0].dtype == \
        torch.uint8
    assert len(data[1]) + len(data[3]) == 1797 - 1200  # 1,200 demo digits
    first, again = demo.random_backbone(cfg), demo.random_backbone(cfg)
    for a, b in zip(first.state_dict().values(),
                    again.state_dict().values()):
        assert torch.equal(a, b)
    other = demo.random_backbone(demo.load_config(['randomness.seed=4']))
    ckpt = tmp_path / 'iter_1.pth'
    torch.save({'state_dict': {f'backbone.{k}': v for k, v in
                               other.state_dict().items()}}, ckpt)
    loaded = demo.load_backbone(first, str(ckpt))
    assert torch.equal(loaded.state_dict()['conv1.weight'],
                       other.state_dict()['conv1.weight'])
    small = tuple(t[:150] for t in data)
    pre = cfg.model.data_preprocessor
    acc = demo.probe(loaded, small, pre['mean'], pre['std'])
    assert 0 <= acc['few'] <= 100 and 0 <= acc['full'] <= 100
