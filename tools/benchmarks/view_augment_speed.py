"""Time the device stage of the split pipeline (ViewAugmentDataPreprocessor
with the MoCo v2 ops of ``configs/_base_/datasets/mocov2_views.py``) and
each batched op, in ms per image, on uint8 views cut from scikit-image's
bundled photographs.

    python tools/benchmarks/view_augment_speed.py [--device cpu|cuda]
        [--batch 32] [--size 224] [--views 2] [--threads 1 2] [--rounds 5]

The preprocessor is called as mmengine calls it:
``preprocessor(dict(inputs=[uint8 (N, 3, H, W) per view]), training=True)``.
Per op, every sample is selected (``prob`` 1), so the op column is the cost
of one application to one view; the stage column is the whole stage with the
configs' probabilities for ``--views`` views per image, beside the same
augmentation as mmpretrain / mmcv per-image transforms on the same views
(one process, same threads: the ratio is the robust figure on a shared
machine). The median of ``--rounds`` timed calls after one warm-up.
"""
import argparse
import os.path as osp
import statistics
import sys
import time

import numpy as np
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def views(batch, size, num_views, seed=0):
    """``num_views`` uint8 (batch, 3, size, size) BGR views: random crops of
    the bundled photographs, resized."""
    from PIL import Image
    from skimage import data
    photos = [np.asarray(getattr(data, n)())[..., :3]
              for n in ('astronaut', 'chelsea', 'coffee', 'rocket')]
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_views):
        imgs = []
        for i in range(batch):
            p = photos[i % len(photos)]
            h, w = p.shape[:2]
            s = int(rng.integers(min(h, w) // 3, min(h, w)))
            y = int(rng.integers(0, h - s + 1))
            x = int(rng.integers(0, w - s + 1))
            crop = Image.fromarray(p[y:y + s, x:x + s]).resize((size, size))
            imgs.append(np.asarray(crop)[..., ::-1])
        out.append(torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2)
                   .contiguous())
    return out


def timed(fn, rounds, sync):
    fn()
    sync()
    times = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch', type=int, default=32)
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--views', type=int, default=2)
    parser.add_argument('--threads', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    from mmengine.config import Config

    import mmmask.models  # noqa: F401
    from mmmask.registry import BATCH_AUGMENTS, MODELS
    cfg = Config.fromfile(osp.join(ROOT, 'configs', '_base_', 'datasets',
                                   'imagenet_mocov2.py'))
    device = torch.device(args.device)
    sync = (torch.cuda.synchronize if device.type == 'cuda'
            else (lambda: None))
    pre = MODELS.build(cfg.data_preprocessor).to(device)
    inputs = views(args.batch, args.size, args.views)
    float_view = inputs[0].to(device).float()[:, [2, 1, 0]].contiguous()
    n = args.batch
    print(f'device {device}, batch {n}, {args.views} views of '
          f'{args.size} px, median of {args.rounds}')
    print('| threads | op (every sample) | ms per image-view |')
    print('|---|---|---|')
    # the per-image transforms of the same augmentation (no crop), in the
    # mmpretrain scope, on the same uint8 views (HWC BGR arrays)
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        per_image_ts = [TRANSFORMS.build(t)
                        for t in cfg.view_pipeline_per_image[1:]]
    arrays = [np.ascontiguousarray(v.permute(0, 2, 3, 1).numpy())
              for v in inputs]

    def per_image():
        for view in arrays:
            for img in view:
                results = dict(img=img)
                for t in per_image_ts:
                    results = t(results)

    rows = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for op_cfg in cfg.view_augments:
            c = dict(op_cfg, prob=1.0)
            op = BATCH_AUGMENTS.build(c)
            params = op.sample_params(n, torch.Generator().manual_seed(0))
            params = {k: v.to(device) for k, v in params.items()}
            chunk = pre.cpu_chunk if device.type == 'cpu' else n

            def run_op():
                for s in range(0, n, chunk):
                    op.apply(float_view[s:s + chunk],
                             {k: v[s:s + chunk] for k, v in params.items()})
            t = timed(run_op, args.rounds, sync)
            print(f'| {threads} | {c["type"]} | {1000 * t / n:.2f} |')

        def stage():
            pre(dict(inputs=[v.to(device) for v in inputs]), training=True)

        def plain():
            pre(dict(inputs=[v.to(device) for v in inputs]), training=False)
        rows.append((threads, timed(stage, args.rounds, sync),
                     timed(plain, args.rounds, sync),
                     timed(per_image, args.rounds, lambda: None)))
    print()
    print(f'| threads | device stage, ms per image ({args.views} views) | '
          'normalisation only (training=False) | the same ops per image on '
          'the CPU (mmpretrain / mmcv) | per-image / device stage |')
    print('|---|---|---|---|---|')
    for threads, t, t0, tp in rows:
        print(f'| {threads} | {1000 * t / n:.2f} | {1000 * t0 / n:.2f} | '
              f'{1000 * tp / n:.2f} | {tp / t:.2f} |')


if __name__ == '__main__':
    main()
