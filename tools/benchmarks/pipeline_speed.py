"""Two-view data pipeline speed per CPU core: per-image vs split pipeline.

Writes ImageNet-size JPEGs (500 x 375, quality 90) cut from scikit-image's
bundled colour photographs (no download) and measures, in one process with
one thread (``torch.set_num_threads(1)``, ``cv2.setNumThreads(0)``), images
per second of:

* ``decode only``: ``cv2.imread``;
* ``mmpretrain MoCo v2``: mmpretrain's own MoCo v2 train pipeline
  (``imagenet_bs32_mocov2.py`` of its package configs, built from its
  transforms: LoadImageFromFile, MultiView of two RandomResizedCrop
  (pillow) + ColorJitter + grayscale + blur + flip views, PackInputs) and
  ``default_collate``;
* ``mmmask per-image``: the train pipeline of ``--per-image-config`` (the
  same augmentation with mmmask's transforms) and ``default_collate``;
* ``mmmask split (CPU side)``: ``DecodeMultiViewCrops`` (decode and crop
  only) + ``PackInputs(algorithm_keys=['view_geometry'])`` +
  ``default_collate``;
* ``device stage``: the ms per image of the ``ViewAugmentDataPreprocessor``
  of ``--split-config`` on the collated split batches, on ``--device``
  (printed as "not available" while that config does not use it); the
  median and min-max of ``STAGE_CALLS`` calls per round.

It also prints the mean abs difference between the split pipeline's views
and the pillow path's (LoadImageFromFile + RandomResizedCrop(backend=
'pillow'), same seed, same crops).

Each round runs every variant once over all images, in a new random order;
the table gives the median and the min-max over ``--rounds`` rounds, the
speed-ups over mmpretrain are medians of the per-round ratios (variants of
one round run back to back, so a slow phase of a shared machine slows both
sides of a pair), and "CPU cores a GPU needs" is ``--model-rate`` divided by
the median images/s per core.

Example (the table in docs/benchmarks.md)::

    python tools/benchmarks/pipeline_speed.py
    python tools/benchmarks/pipeline_speed.py --images 8 --rounds 1  # seconds
"""
import argparse
import os
import os.path as osp
import random
import statistics
import sys
import tempfile
import time
import warnings

import cv2
import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# colour photographs bundled in the scikit-image wheel
PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'motorcycle_left',
          'hubble_deep_field', 'immunohistochemistry', 'retina')
SIZE = (500, 375)  # (w, h) of a typical ImageNet training JPEG
STAGE_CALLS = 5  # device-stage calls per round
PER_IMAGE = ('mmpretrain', 'per_image', 'split')
LABELS = dict(decode='decode only (cv2.imread)',
              mmpretrain='mmpretrain MoCo v2 (two views)',
              per_image='mmmask per-image (two views)',
              split='mmmask split, CPU side (two views)')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--images', type=int, default=64,
                   help='JPEGs written (cut from the bundled photographs)')
    p.add_argument('--rounds', type=int, default=7)
    p.add_argument('--batch', type=int, default=32,
                   help='samples per default_collate call')
    p.add_argument('--model-rate', type=float, default=1900.0,
                   help='images/s the model consumes on one GPU (ResNet-50 '
                   'MoCo v2 / DenseCL with AMP on a current GPU)')
    p.add_argument('--per-image-config', default=None,
                   help="mmmask's per-image pipeline: a dataset config whose "
                   'train_pipeline is LoadImageFromFile + MultiView of the '
                   'whole MoCo v2 view augmentation (default: '
                   'configs/_base_/datasets/imagenet_mocov2_per_image.py '
                   'where it exists, else imagenet_mocov2.py)')
    p.add_argument('--split-config',
                   default='configs/_base_/datasets/imagenet_mocov2.py',
                   help='a dataset config whose data_preprocessor is the '
                   'device stage (ViewAugmentDataPreprocessor)')
    p.add_argument('--device', default='cpu')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--decoders', action='store_true',
                   help='also compare JPEG decoders (cv2, PIL, torchvision, '
                   'simplejpeg where installed) at full and 1/2 scale')
    p.add_argument('--out-dir', default=None,
                   help='where the JPEGs go (default: a temporary folder)')
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# the images
# --------------------------------------------------------------------------
def write_jpegs(out_dir: str, n: int, seed: int = 0):
    """``n`` 500 x 375 quality-90 JPEGs: random 4:3 crops (60-100 % of the
    side) of the bundled colour photographs, resized with PIL bicubic."""
    from PIL import Image
    from skimage import data as skdata
    photos = []
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for name in PHOTOS:
            try:
                img = getattr(skdata, name)()
            except Exception:  # not bundled in this scikit-image version
                continue
            if img.ndim == 3 and img.shape[2] >= 3:
                photos.append(np.ascontiguousarray(img[..., :3]))
    if not photos:
        raise RuntimeError('no bundled scikit-image photograph could be read')
    rng = np.random.default_rng(seed)
    paths = []
    os.makedirs(out_dir, exist_ok=True)
    for k in range(n):
        img = photos[k % len(photos)]
        h, w = img.shape[:2]
        side = rng.uniform(0.6, 1.0)
        cw = min(w, int(round(min(w, h * 4 / 3) * side)))
        ch = int(round(cw * 3 / 4))
        y = int(rng.integers(0, h - ch + 1))
        x = int(rng.integers(0, w - cw + 1))
        crop = Image.fromarray(img[y:y + ch, x:x + cw]).resize(SIZE,
                                                               Image.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
        path = osp.join(out_dir, f'{k:04d}.jpg')
        crop.save(path, quality=90)
        paths.append(path)
    return paths, len(photos)


# --------------------------------------------------------------------------
# the pipelines
# --------------------------------------------------------------------------
def _compose(pipeline, scope: str):
    from mmcv.transforms import Compose
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope(scope):
        return Compose(pipeline)


def mmpretrain_pipeline():
    import mmpretrain
    from mmengine.config import Config
    import mmpretrain.datasets  # noqa: F401
    path = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'configs',
                    '_base_', 'datasets', 'imagenet_bs32_mocov2.py')
    return _compose(Config.fromfile(path).train_pipeline, 'mmpretrain')


def mmmask_per_image_pipeline(config: str):
    from mmengine.config import Config
    import mmmask.datasets  # noqa: F401
    cfg = Config.fromfile(osp.join(ROOT, config) if not osp.isabs(config)
                          else config)
    return _compose(cfg.train_pipeline, 'mmmask')


def split_cpu_pipeline():
    import mmmask.datasets  # noqa: F401
    return _compose([
        dict(type='DecodeMultiViewCrops', num_views=2,
             crop=dict(scale=224, crop_ratio_range=(0.2, 1.))),
        dict(type='PackInputs', algorithm_keys=['view_geometry']),
    ], 'mmmask')


def device_stage(config: str, device: str):
    """(preprocessor, note): the configured ViewAugmentDataPreprocessor, or
    None and why not."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    cfg = Config.fromfile(osp.join(ROOT, config) if not osp.isabs(config)
                          else config)
    pre = cfg.get('data_preprocessor')
    if not pre or pre.get('type') != 'ViewAugmentDataPreprocessor':
        return None, (f'not available ({config} does not use '
                      'ViewAugmentDataPreprocessor)')
    import mmmask.models  # noqa: F401
    from mmmask.registry import MODELS
    if 'ViewAugmentDataPreprocessor' not in MODELS.module_dict:
        return None, 'not available (ViewAugmentDataPreprocessor is not ' \
            'registered)'
    with DefaultScope.overwrite_default_scope('mmmask'):
        model = MODELS.build(pre.to_dict() if hasattr(pre, 'to_dict')
                             else dict(pre))
    return model.to(device).train(), f'{config}, {device}'


# --------------------------------------------------------------------------
# timing
# --------------------------------------------------------------------------
def run_pipeline(pipeline, paths, batch):
    """Samples made and collated; the last collated batch."""
    from mmengine.dataset import default_collate
    out, samples = None, []
    for i, path in enumerate(paths):
        samples.append(pipeline(dict(img_path=path, sample_idx=i)))
        if len(samples) == batch:
            out, samples = default_collate(samples), []
    if samples:
        out = default_collate(samples)
    return out


def decoder_variants():
    """name -> f(bytes) of the JPEG decoders on this machine (BGR or RGB
    uint8 arrays; all of them are libjpeg-turbo)."""
    import io

    from PIL import Image
    from torchvision.io import decode_jpeg

    def pil(scale):
        def f(data):
            im = Image.open(io.BytesIO(data))
            if scale > 1:  # libjpeg's DCT scaling
                im.draft('RGB', (im.width // scale, im.height // scale))
            return np.asarray(im.convert('RGB'))
        return f

    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2}
    out = {f'cv2.imdecode 1/{s}': (lambda s: lambda d: cv2.imdecode(
        np.frombuffer(d, np.uint8), flags[s]))(s) for s in (1, 2)}
    out.update({f'PIL (draft) 1/{s}': pil(s) for s in (1, 2)})
    out['torchvision.io.decode_jpeg 1/1'] = lambda d: decode_jpeg(
        torch.frombuffer(bytearray(d), dtype=torch.uint8))
    try:
        import simplejpeg
    except ImportError:
        return out
    for s in (1, 2):
        def f(d, s=s):
            h, w = simplejpeg.decode_jpeg_header(d)[:2]
            return simplejpeg.decode_jpeg(d, colorspace='BGR',
                                          min_height=-(-h // s),
                                          min_width=-(-w // s))
        out[f'simplejpeg 1/{s}'] = f
    out['simplejpeg 1/1 fastdct+fastupsample'] = lambda d: \
        simplejpeg.decode_jpeg(d, colorspace='BGR', fastdct=True,
                               fastupsample=True)
    return out


def compare_decoders(paths, rounds, seed):
    """Print images/s per core of each decoder (interleaved rounds)."""
    datas = [open(p, 'rb').read() for p in paths]
    fns = decoder_variants()
    ref = cv2.imdecode(np.frombuffer(datas[0], np.uint8), cv2.IMREAD_COLOR)
    rates = {n: [] for n in fns}
    rng = random.Random(seed)
    for _ in range(rounds):
        order = list(fns)
        rng.shuffle(order)
        for n in order:
            t0 = time.perf_counter()
            for d in datas:
                fns[n](d)
            rates[n].append(len(datas) / (time.perf_counter() - t0))
    print('\n| JPEG decoder (bytes -> uint8 array) | img/s per core (median) | '
          'img/s (min-max) | mean abs diff to cv2 1/1 |')
    print('|---|---|---|---|')
    rows = {}
    for n, fn in fns.items():
        img = fn(datas[0])
        if isinstance(img, torch.Tensor):
            img = img.permute(1, 2, 0).numpy()[..., ::-1]
        elif n.startswith('PIL'):
            img = img[..., ::-1]
        diff = (f'{np.abs(img.astype(int) - ref).mean():.3f}'
                if img.shape == ref.shape else '- (other size)')
        r = rates[n]
        rows[n] = statistics.median(r)
        print(f'| {n} | {rows[n]:.1f} | {min(r):.1f}-{max(r):.1f} | {diff} |')
    return rows


def pixel_diff_to_pillow(paths, seed):
    """Mean abs difference (grey levels, per view) between the split
    pipeline's views and those of LoadImageFromFile + GeometricMultiView
    with RandomResizedCrop(backend='pillow') under the same seed (the same
    crops): (mean, max over views)."""
    split = _compose([dict(type='DecodeMultiViewCrops', num_views=2,
                           crop=dict(scale=224, crop_ratio_range=(0.2, 1.)))],
                     'mmmask')
    pillow = _compose([
        dict(type='LoadImageFromFile'),
        dict(type='GeometricMultiView', num_views=2, transforms=[[
            dict(type='RandomResizedCrop', scale=224,
                 crop_ratio_range=(0.2, 1.), backend='pillow')]])], 'mmmask')
    diffs = []
    for i, path in enumerate(paths):
        np.random.seed(seed + i)
        a = split(dict(img_path=path))['img']
        np.random.seed(seed + i)
        b = pillow(dict(img_path=path))['img']
        diffs += [np.abs(x.astype(np.int16) - y).mean() for x, y in zip(a, b)]
    return float(np.mean(diffs)), float(np.max(diffs))


def main(argv=None):
    args = parse_args(argv)
    if args.per_image_config is None:
        base = 'configs/_base_/datasets/'
        per_image = base + 'imagenet_mocov2_per_image.py'
        args.per_image_config = (per_image if osp.exists(
            osp.join(ROOT, per_image)) else base + 'imagenet_mocov2.py')
    torch.set_num_threads(1)
    cv2.setNumThreads(0)
    from mmengine.logging import MMLogger
    MMLogger.get_instance('mmmask')  # quiet mmengine's default logger

    tmp = None
    if args.out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix='pipeline_speed_')
        args.out_dir = tmp.name
    paths, n_photos = write_jpegs(args.out_dir, args.images, args.seed)
    pipes = dict(mmpretrain=mmpretrain_pipeline(),
                 per_image=mmmask_per_image_pipeline(args.per_image_config),
                 split=split_cpu_pipeline())
    pre, pre_note = device_stage(args.split_config, args.device)

    def variant(name):
        if name == 'decode':
            return lambda: [cv2.imread(p) for p in paths]
        return lambda: run_pipeline(pipes[name], paths, args.batch)

    names = ['decode'] + list(PER_IMAGE)
    fns = {n: variant(n) for n in names}
    np.random.seed(args.seed)
    random.seed(args.seed)
    for fn in fns.values():  # warm-up (imports, first calls)
        fn()
    if pre is not None:
        time_device_stage(pre, fns['split'](), args.device)
    order_rng = random.Random(args.seed)
    rates = {n: [] for n in names}
    device_ms = []
    for _ in range(args.rounds):
        order = names[:]
        order_rng.shuffle(order)
        batch = None
        for n in order:
            t0 = time.perf_counter()
            out = fns[n]()
            rates[n].append(len(paths) / (time.perf_counter() - t0))
            if n == 'split':
                batch = out
        if pre is not None:  # a few calls: one is at the mercy of a
            # shared machine's slow moments (the median of all is printed)
            device_ms += [time_device_stage(pre, batch, args.device)
                          for _ in range(STAGE_CALLS)]

    med = {n: statistics.median(v) for n, v in rates.items()}
    vs_mmp = {n: statistics.median(a / b for a, b in
                                   zip(rates[n], rates['mmpretrain']))
              for n in names}
    print(f'\n## pipeline_speed: {len(paths)} JPEGs 500 x 375 q90 from '
          f'{n_photos} bundled photographs, 1 process, 1 thread, '
          f'{args.rounds} rounds, batch {args.batch}\n')
    print('| pipeline | img/s per core (median) | img/s (min-max) | '
          'ms per image | x mmpretrain |')
    print('|---|---|---|---|---|')
    rows = {}
    for n in names:
        r = rates[n]
        rows[n] = dict(rate=med[n], min=min(r), max=max(r),
                       vs_mmpretrain=vs_mmp[n])
        print(f'| {LABELS[n]} | {med[n]:.1f} | {min(r):.1f}-{max(r):.1f} | '
              f'{1e3 / med[n]:.3f} | {vs_mmp[n]:.2f} |')
    if device_ms:
        ms = statistics.median(device_ms)
        rows['device_ms'] = ms
        print(f'| device stage, ms per image ({pre_note}) | - | - | '
              f'{ms:.3f} ({min(device_ms):.3f}-{max(device_ms):.3f}) | - |')
    else:
        rows['device_ms'] = None
        print(f'| device stage, ms per image | - | - | {pre_note} | - |')
    print(f'\nCPU cores a GPU needs at {args.model_rate:.0f} img/s '
          '(model rate / img/s per core):\n')
    print('| pipeline | cores |')
    print('|---|---|')
    for n in PER_IMAGE:
        cores = args.model_rate / med[n]
        rows[n]['cores'] = cores
        print(f'| {LABELS[n]} | {cores:.1f} |')
    rows['pixel_diff'] = pixel_diff_to_pillow(paths, args.seed)
    print('\nSplit views vs the pillow path (same crops): mean abs diff '
          '%.3f grey levels per view (max %.3f).' % rows['pixel_diff'])
    if args.decoders:
        rows['decoders'] = compare_decoders(paths, args.rounds, args.seed)
    if tmp is not None:
        tmp.cleanup()
    return rows


def time_device_stage(pre, batch, device):
    """ms per image of one training-mode call of the preprocessor on a
    collated split batch."""
    data = dict(inputs=[x.to(device) for x in batch['inputs']],
                data_samples=batch['data_samples'])
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    pre(data, training=True)
    if device.startswith('cuda'):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) * 1e3 / len(batch['inputs'][0])


if __name__ == '__main__':
    main()
