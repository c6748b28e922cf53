"""Every recipe trains on data laid out as its header says.

For each recipe config (``configs/*.py``, ``configs/demo/*.py``) the test
writes a tiny folder in exactly the layout the config's header comment names
(real JPEGs / PNGs cut from scikit-image's photographs; for CIFAR,
mmpretrain's pickled batches of real photograph pixels), changes into it so
the config's own relative ``data_root`` points there, builds the train
dataloader from the config as it is (only batch size and workers changed),
loads one batch through the configured pipeline and collate, and runs it
through the model's data preprocessor. Nothing of the dataset config is
overridden, so a wrong ``data_root`` / ``data_prefix`` / ``ann_file`` /
``split`` fails here as it would for a user.
"""
import glob
import os
import os.path as osp
import pickle
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT

CONFIGS = osp.join(ROOT, 'configs')
CONVERTER = osp.join(ROOT, 'tools', 'dataset_converters',
                     'make_imagenet100.py')
BATCH = 2

# a few ImageNet-100 wnids (CMC's list) and two ImageNet classes outside it
IN100_WNIDS = ['n02869837', 'n01558993']
OTHER_WNIDS = ['n01440764']


# --------------------------------------------------------------------------
# real pixels
# --------------------------------------------------------------------------
def _photo_crops(num, size):
    """``num`` distinct RGB uint8 crops (``size`` = (w, h)) of
    scikit-image's bundled photographs."""
    from PIL import Image
    from skimage import data
    photos = [np.asarray(Image.fromarray(getattr(data, n)()).convert('RGB'))
              for n in ('astronaut', 'chelsea', 'coffee', 'rocket')]
    crops = []
    for i in range(num):
        img = photos[i % len(photos)]
        h, w = img.shape[:2]
        k = i // len(photos)
        y0, x0 = (k * 37) % (h // 3), (k * 53) % (w // 3)
        crop = img[y0:y0 + 2 * h // 3, x0:x0 + 2 * w // 3]
        crops.append(np.asarray(Image.fromarray(crop).resize(size)))
    return crops


def _write_images(folder, names, size=(120, 90)):
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, pixels in zip(names, _photo_crops(len(names), size)):
        path = osp.join(folder, name)
        Image.fromarray(pixels).save(path, quality=90)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------
# layouts (each returns the image files it wrote, or None)
# --------------------------------------------------------------------------
def layout_imagenet(root='data/imagenet'):
    """mmpretrain's ImageNet: train/<wnid>/*.JPEG, meta/train.txt
    ('<wnid>/<file> <label>' relative to train/)."""
    files, lines = [], []
    for label, wnid in enumerate(IN100_WNIDS + OTHER_WNIDS):
        names = [f'{wnid}_{i}.JPEG' for i in range(2)]
        files += _write_images(osp.join(root, 'train', wnid), names)
        lines += [f'{wnid}/{n} {label}\n' for n in names]
    os.makedirs(osp.join(root, 'meta'))
    with open(osp.join(root, 'meta', 'train.txt'), 'w') as f:
        f.writelines(lines)
    return files


def layout_imagenet100_folder():
    """data/imagenet100/train/<wnid>/*.JPEG + meta/train.txt, as
    tools/dataset_converters/make_imagenet100.py writes it."""
    layout_imagenet('imagenet_src')
    _convert('imagenet_src', '--out', 'data/imagenet100', '--allow-missing')
    return sorted(glob.glob('data/imagenet100/train/*/*.JPEG'))


def layout_imagenet100_list():
    """ImageNet + meta/imagenet100_train.txt (the converter's
    --list-only)."""
    layout_imagenet('data/imagenet')
    _convert('data/imagenet', '--list-only', '--allow-missing')
    # only the listed classes' files may load
    return sorted(p for w in IN100_WNIDS
                  for p in glob.glob(f'data/imagenet/train/{w}/*.JPEG'))


def _convert(*args):
    proc = subprocess.run([sys.executable, CONVERTER, *args],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def layout_coco():
    """COCO's images only: data/coco/train2017/*.jpg."""
    return _write_images('data/coco/train2017',
                         [f'{i:012d}.jpg' for i in (9, 25, 30, 34)],
                         size=(128, 96))


def _cifar_batch(pixels, labels, fine):
    data = np.stack([p.transpose(2, 0, 1).reshape(-1) for p in pixels])
    entry = {'data': data.astype(np.uint8), 'filenames': [
        f'img_{i}.png' for i in range(len(pixels))]}
    entry['fine_labels' if fine else 'labels'] = list(labels)
    return entry


def layout_cifar(kind):
    """mmpretrain's CIFAR layout: the python pickles of the official archive
    (cifar-10-batches-py/data_batch_1-5, test_batch, batches.meta;
    cifar-100-python/train, test, meta) with a few 32 x 32 photograph
    crops each."""
    pixels = _photo_crops(12, (32, 32))
    if kind == 'cifar10':
        folder = 'data/cifar10/cifar-10-batches-py'
        files = {f'data_batch_{i}': _cifar_batch(pixels[2 * i - 2:2 * i],
                                                 [i, i + 1], False)
                 for i in range(1, 6)}
        files['test_batch'] = _cifar_batch(pixels[10:], [0, 1], False)
        files['batches.meta'] = {'label_names': [f'c{i}' for i in range(10)]}
    else:
        folder = 'data/cifar100/cifar-100-python'
        files = {'train': _cifar_batch(pixels[:10], range(10), True),
                 'test': _cifar_batch(pixels[10:], [0, 1], True),
                 'meta': {'fine_label_names': [f'c{i}' for i in range(100)]}}
    os.makedirs(folder)
    for name, obj in files.items():
        with open(osp.join(folder, name), 'wb') as f:
            pickle.dump(obj, f)
    return None


_DEMO_CACHE = {}


def layout_demo():
    """tools/make_demo_data.py's output at its default place (made once per
    test session, then copied)."""
    if 'dir' not in _DEMO_CACHE:
        cache = _DEMO_CACHE['factory'].mktemp('demo_layout')
        proc = subprocess.run(
            [sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'),
             '--num', '6'], cwd=cache, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        _DEMO_CACHE['dir'] = cache
    shutil.copytree(osp.join(_DEMO_CACHE['dir'], 'data'), 'data')
    return sorted(p for p in glob.glob('data/demo_images/**/*',
                                       recursive=True) if osp.isfile(p))


# recipe -> (layout, what its header must say about the layout)
IMAGENET_HEADER = ['data/imagenet/train/<wnid>/*.JPEG',
                   'data/imagenet/meta/train.txt']
DEMO_HEADER = ['python tools/make_demo_data.py']
RECIPES = {
    'mocov2_r50.py': (layout_imagenet, IMAGENET_HEADER),
    'densecl_r50.py': (layout_imagenet, IMAGENET_HEADER),
    'maskco_r50.py': (layout_imagenet, IMAGENET_HEADER),
    'cmae_vit-base-p16.py': (layout_imagenet, IMAGENET_HEADER),
    'saliency_mocov2_r50.py': (layout_imagenet100_folder, [
        'data/imagenet100/train/<wnid>/*.JPEG',
        'data/imagenet100/meta/train.txt']),
    'macrl_vit-s-p16_in100.py': (layout_imagenet100_list, [
        'data/imagenet/train/<wnid>/*.JPEG',
        'data/imagenet/meta/imagenet100_train.txt']),
    'macrl_vit-s-p4_cifar10.py': (lambda: layout_cifar('cifar10'),
                                  ['data/cifar10/cifar-10-batches-py/']),
    'macrl_vit-s-p4_cifar100.py': (lambda: layout_cifar('cifar100'),
                                   ['data/cifar100/cifar-100-python/']),
    'densecl_r50_coco-800e.py': (layout_coco, ['data/coco/train2017/*.jpg']),
    'maskco_r50_coco-800e.py': (layout_coco, ['data/coco/train2017/*.jpg']),
    'demo/densecl_r18_demo.py': (layout_demo, DEMO_HEADER),
    'demo/mocov2_r18_demo.py': (layout_demo, DEMO_HEADER),
    'demo/densecl_r18w32_digits_demo.py': (layout_demo, DEMO_HEADER),
    'demo/cmae_vit-tiny_demo.py': (layout_demo, DEMO_HEADER),
    'demo/macrl_vit-tiny_demo.py': (layout_demo, DEMO_HEADER),
}


def header(path):
    """The comment lines of a config (its header and the comment above its
    dataset), as one line."""
    with open(path) as f:
        lines = [ln.strip()[1:].strip() for ln in f
                 if ln.strip().startswith('#')]
    return re.sub(r'\s+', ' ', ' '.join(lines))


def test_every_recipe_is_covered():
    found = sorted(osp.relpath(p, CONFIGS) for p in
                   glob.glob(osp.join(CONFIGS, '*.py'))
                   + glob.glob(osp.join(CONFIGS, 'demo', '*.py')))
    assert found == sorted(RECIPES)


@pytest.mark.parametrize('recipe', sorted(RECIPES))
def test_header_names_the_layout(recipe):
    text = header(osp.join(CONFIGS, recipe))
    for needle in RECIPES[recipe][1]:
        assert needle in text, f'{recipe}: header lacks {needle!r}: {text}'


@pytest.fixture(scope='module', autouse=True)
def _demo_cache(tmp_path_factory):
    _DEMO_CACHE.clear()
    _DEMO_CACHE['factory'] = tmp_path_factory
    yield
    _DEMO_CACHE.clear()


@pytest.fixture
def no_cifar_md5(monkeypatch):
    """mmpretrain's CIFAR datasets check the md5 of the official files;
    the tiny batches here are in their format but not those files. The
    check that every file exists stays."""
    import mmpretrain.datasets.cifar as cifar
    monkeypatch.setattr(cifar, 'check_md5', lambda *a, **k: True)


def _flat_tensors(inputs):
    import torch
    if isinstance(inputs, torch.Tensor):
        return [inputs]
    if isinstance(inputs, dict):
        inputs = list(inputs.values())
    return [t for item in inputs for t in _flat_tensors(item)]


@pytest.mark.parametrize('recipe', sorted(RECIPES))
def test_recipe_trains_on_its_layout(recipe, tmp_path, monkeypatch,
                                     no_cifar_md5):
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    from mmengine.runner import Runner

    import mmmask.datasets  # noqa: F401
    from mmmask.registry import MODELS

    cfg = Config.fromfile(osp.join(CONFIGS, recipe))
    monkeypatch.chdir(tmp_path)
    files = RECIPES[recipe][0]()

    loader_cfg = cfg.train_dataloader.to_dict()
    loader_cfg.update(batch_size=BATCH, num_workers=0,
                      persistent_workers=False, pin_memory=False)
    with DefaultScope.overwrite_default_scope('mmmask'):
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        batch = next(iter(loader))
        preprocessor = MODELS.build(cfg.model.data_preprocessor)
        processed = preprocessor(batch, training=True)

    samples = batch['data_samples']
    assert len(samples) == BATCH
    assert _flat_tensors(batch['inputs'])
    if files is not None:  # image files: the batch read files we wrote
        written = {osp.realpath(p) for p in files}
        for sample in samples:
            path = osp.realpath(sample.img_path)
            assert path in written, (path, sorted(written))
    out = _flat_tensors(processed['inputs'])
    assert out and all(torch.isfinite(t.float()).all() for t in out)


def test_coco_recipes_use_the_densecl_authors_schedule():
    """DenseCL's authors' COCO config (densecl_coco_800ep.py): 8 x 32 = 256
    images a step, SGD lr 0.3 / momentum 0.9 / wd 1e-4, cosine to 0 over 800
    epochs; the MaskCo COCO recipe takes the same (mmmask's choice)."""
    from mmengine.config import Config
    for name in ('densecl_r50_coco-800e.py', 'maskco_r50_coco-800e.py'):
        cfg = Config.fromfile(osp.join(CONFIGS, name))
        assert cfg.train_dataloader.batch_size * 8 == \
            cfg.auto_scale_lr.base_batch_size == 256
        opt = cfg.optim_wrapper.optimizer
        assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == \
            ('SGD', 0.3, 0.9, 1e-4)
        assert cfg.train_cfg.max_epochs == 800
        (sched, ) = cfg.param_scheduler
        assert (sched.type, sched.T_max, sched.end, sched.eta_min) == \
            ('CosineAnnealingLR', 800, 800, 0.)
        assert cfg.train_dataloader.dataset.with_label is False
