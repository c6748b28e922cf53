"""Time the device stage of the split pipeline (ViewAugmentDataPreprocessor
with the MoCo v2 ops of ``configs/_base_/datasets/mocov2_views.py``) and
each batched op, in ms per image, on uint8 views cut from scikit-image's
bundled photographs.

    python tools/benchmarks/view_augment_speed.py [--device cpu|cuda]
        [--batch 32] [--size 224] [--views 2] [--threads 1] [--rounds 5]

The preprocessor is called as mmengine calls it:
``preprocessor(dict(inputs=[uint8 (N, 3, H, W) per view]), training=True)``.
Per op, every sample is selected (``prob`` 1), so the op column is the cost
of one application to one view, beside the per-image transform with ``prob``
1 on the same views; the stage column is the whole stage with the configs'
probabilities for ``--views`` views per image, beside the same augmentation
as mmpretrain / mmcv per-image transforms on the same views (one process,
same threads: the ratio is the robust figure on a shared machine). The
median of ``--rounds`` timed calls after one warm-up; the load average
(``os.getloadavg()``) is printed before and after.
"""
import argparse
import json
import os
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


def timed(fn, rounds, sync, warmup=1):
    for _ in range(warmup):
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
    parser.add_argument('--threads', type=int, nargs='+', default=[1])
    parser.add_argument('--rounds', type=int, default=5)
    parser.add_argument('--cpu-chunks', type=int, nargs='*', default=[],
                        help='also time the eager stage with these '
                        'cpu_chunk values (default: the preprocessor\'s '
                        'rule)')
    parser.add_argument('--json', default=None,
                        help='also write the two tables here (JSON)')
    parser.add_argument('--compile', action='store_true',
                        help='also time the stage with compile=True (the '
                        'first call compiles, untimed)')
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
    load = os.getloadavg()
    print(f'device {device}, batch {n}, {args.views} views of '
          f'{args.size} px, median of {args.rounds}, sub-batch '
          f'{pre.sub_batch(inputs[0])} on the CPU, load average '
          f'{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} '
          'cores')
    # the per-image transforms of the same augmentation (no crop), in the
    # mmpretrain scope, on the same uint8 views (HWC BGR arrays)
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import TRANSFORMS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        per_image_ts = [TRANSFORMS.build(t)
                        for t in cfg.view_pipeline_per_image[1:]]
        per_image_ops = [TRANSFORMS.build(dict(t, prob=1.0))
                         for t in cfg.view_pipeline_per_image[1:]]
    arrays = [np.ascontiguousarray(v.permute(0, 2, 3, 1).numpy())
              for v in inputs]

    def per_image():
        for view in arrays:
            for img in view:
                results = dict(img=img)
                for t in per_image_ts:
                    results = t(results)

    rows, op_rows = [], []
    for threads in args.threads:
        torch.set_num_threads(threads)
        for op_cfg, ref in zip(cfg.view_augments, per_image_ops):
            c = dict(op_cfg, prob=1.0)
            op = BATCH_AUGMENTS.build(c)
            params = op.sample_params(n, torch.Generator().manual_seed(0))
            params = op.params_to(params, device)
            chunk = pre.sub_batch(float_view)

            def run_op():
                for s in range(0, n, chunk):
                    op.apply(float_view[s:s + chunk].clone(),
                             {k: v[s:s + chunk] for k, v in params.items()})

            def run_ref():
                for img in arrays[0]:
                    ref(dict(img=img))
            op_rows.append((threads, c['type'], timed(run_op, args.rounds,
                                                      sync),
                            timed(run_ref, args.rounds, lambda: None)))

        def stage():
            pre(dict(inputs=[v.to(device) for v in inputs]), training=True)

        def plain():
            pre(dict(inputs=[v.to(device) for v in inputs]), training=False)
        rows.append((threads, 'eager', timed(stage, args.rounds, sync),
                     timed(plain, args.rounds, sync),
                     timed(per_image, args.rounds, lambda: None)))
        norm = rows[-1][3]

        def variant(label, warmup=1, **override):
            """The stage of a preprocessor built with ``override``."""
            pre_v = MODELS.build(dict(cfg.data_preprocessor,
                                      **override)).to(device)

            def stage_v():
                pre_v(dict(inputs=[v.to(device) for v in inputs]),
                      training=True)
            rows.append((threads, label,
                         timed(stage_v, args.rounds, sync, warmup=warmup),
                         norm, timed(per_image, args.rounds, lambda: None)))
        for chunk in args.cpu_chunks:
            variant(f'eager, cpu_chunk={chunk}', cpu_chunk=chunk)
        if args.compile:  # 3 untimed calls compile
            variant('compile=True', warmup=3, compile=True)
    print('| threads | op (every sample) | ms per image-view | per-image '
          'transform (prob 1), ms | per-image / batched |')
    print('|---|---|---|---|---|')
    for threads, name, t, tp in op_rows:
        print(f'| {threads} | {name} | {1000 * t / n:.3f} | '
              f'{1000 * tp / n:.3f} | {tp / t:.2f} |')
    print()
    print(f'| threads | mode | device stage, ms per image ({args.views} '
          'views) | normalisation only (training=False) | the same ops per '
          'image on the CPU (mmpretrain / mmcv) | per-image / device stage |')
    print('|---|---|---|---|---|---|')
    for threads, mode, t, t0, tp in rows:
        print(f'| {threads} | {mode} | {1000 * t / n:.2f} | '
              f'{1000 * t0 / n:.2f} | {1000 * tp / n:.2f} | {tp / t:.2f} |')
    load = os.getloadavg()
    print(f'load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(
                args=vars(args), device=str(device),
                ops=[dict(threads=th, op=name, ms_per_view=1000 * t / n,
                          per_image_ms=1000 * tp / n)
                     for th, name, t, tp in op_rows],
                stage=[dict(threads=th, mode=mode, ms_per_img=1000 * t / n,
                            normalise_ms=1000 * t0 / n,
                            per_image_ms=1000 * tp / n)
                       for th, mode, t, t0, tp in rows]), f, indent=1)


if __name__ == '__main__':
    main()
