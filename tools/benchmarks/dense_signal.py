"""Dense signal on real images: does pretraining improve segmentation
transfer, and does DenseCL transfer better than MoCo v2?

The set (``mmmask.datasets.builtin.make_dense_digits``, no download): real
scikit-learn digits (those the demo images leave out; train and val
composites from disjoint halves of them) blended onto random crops of the
photographs scikit-image / scikit-learn ship, with a per-pixel label map of
11 classes (background + 10 digits). It is written under
``--work-dir``/data in mmseg's layout (img_dir/, ann_dir/).

Each method pretrains the same small backbone (mmpretrain's ResNet-18 with
``--base-channels`` channels, random init from the seed) for the same
number of steps on the training images without their labels, with
learning_signal.py's machinery (its models, device-stage two-view
augmentation and loop; ``--view-size`` px views so that C5 is a grid, not
one cell: 2 x 2 at 64 px). Rows: random init, mmmask's MoCo v2, DenseCL,
MaskCo and saliency-guided MoCo v2, mmpretrain's MoCo v2 and DenseCL. Each
checkpoint is then fine-tuned through **mmseg's own runner**
(``tools/benchmarks/mmsegmentation/train.py``, which never imports mmmask:
``--pretrained CKPT`` into a ``Pretrained`` init_cfg) as FCN (dilated
ResNet-18-D8 with the pretrained weights, ``FCNHead``), the same schedule
for all (``--ft-iters`` iterations, SGD, poly lr), and mmseg's ``IoUMetric``
gives the validation mIoU. Each ``--seeds`` entry repeats pretraining and
fine-tuning with that seed; the table gives every seed's mIoU, the mean and
the spread (max - min), and each method's mean difference to random init and
to mmmask's MoCo v2 with the spread of those differences over seeds.

Example::

    python tools/benchmarks/dense_signal.py                # defaults
    python tools/benchmarks/dense_signal.py --threads 1 --seeds 0 \\
        --methods random mmmask-mocov2 mmmask-densecl      # one seed
    python tools/benchmarks/dense_signal.py --steps 2 --ft-iters 2 \\
        --num-train 16 --num-val 8 --seeds 0 --batch 8     # seconds
"""
import argparse
import glob
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(osp.dirname(HERE))
for path in (ROOT, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import learning_signal as ls  # noqa: E402

METHODS = ('random', 'mmmask-mocov2', 'mmmask-densecl', 'mmmask-maskco',
           'mmmask-saliency_mocov2', 'mmpretrain-mocov2',
           'mmpretrain-densecl')
REFERENCE = 'mmmask-mocov2'
MEAN, STD = (127.5, ) * 3, (64.0, ) * 3  # learning_signal.normalise


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--methods', nargs='+', default=list(METHODS),
                   choices=METHODS)
    p.add_argument('--steps', type=int, default=300,
                   help='pretraining steps of every method')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2],
                   help='training seeds (pretraining and fine-tuning)')
    p.add_argument('--num-train', type=int, default=400)
    p.add_argument('--num-val', type=int, default=100)
    p.add_argument('--image-size', type=int, default=64)
    p.add_argument('--view-size', type=int, default=64)
    p.add_argument('--base-channels', type=int, default=32)
    p.add_argument('--batch', type=int, default=64)
    p.add_argument('--queue-len', type=int, default=1024)
    p.add_argument('--lr', type=float, default=0.06)
    # 300 iterations at lr 0.01 left every checkpoint, random init included,
    # predicting background only (mIoU 7.47 = background IoU / 11);
    # docs/benchmarks.md, "Dense transfer"
    p.add_argument('--ft-iters', type=int, default=2000)
    p.add_argument('--ft-batch', type=int, default=8)
    p.add_argument('--ft-lr', type=float, default=0.1)
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--work-dir', default='work_dirs/dense_signal')
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------
def write_dataset(root, splits):
    """img_dir/{train,val}/NNNN.png (RGB), ann_dir/{train,val}/NNNN.png
    (labels 0-10)."""
    from PIL import Image
    for split, (images, labels) in zip(('train', 'val'), splits):
        for sub in ('img_dir', 'ann_dir'):
            os.makedirs(osp.join(root, sub, split), exist_ok=True)
        for i, (img, lbl) in enumerate(zip(images, labels)):
            Image.fromarray(img).save(osp.join(root, 'img_dir', split,
                                               f'{i:04d}.png'))
            Image.fromarray(lbl).save(osp.join(root, 'ann_dir', split,
                                               f'{i:04d}.png'))


# --------------------------------------------------------------------------
# pretraining (learning_signal's models and loop)
# --------------------------------------------------------------------------
def signal_args(args, seed):
    return ls.parse_args([
        '--batch', str(args.batch), '--queue-len', str(args.queue_len),
        '--base-channels', str(args.base_channels), '--lr', str(args.lr),
        '--view-size', str(args.view_size), '--seed', str(seed)])


def pretrain_checkpoint(name, args, seed, train_x, path):
    """Pretrain ``name`` (or take the random init) and save its backbone as
    ``{'state_dict': {'backbone.*': ...}}``; returns (steps, s/step)."""
    largs = signal_args(args, seed)
    if name == 'random':
        backbone, steps, sps = ls.random_backbone(largs), 0, float('nan')
    else:
        backbone, steps, sps, _ = ls.pretrain(name, largs, (train_x, ),
                                              args.steps)
    state = {f'backbone.{k}': v.detach().clone()
             for k, v in backbone.state_dict().items()}
    torch.save({'state_dict': state}, path)
    return steps, sps


# --------------------------------------------------------------------------
# fine-tuning through mmseg's runner
# --------------------------------------------------------------------------
FCN_CONFIG = """\
# FCN ResNet-18-D8 (base {base} channels) on the composited digits
# (written by tools/benchmarks/dense_signal.py)
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg.datasets', 'mmseg.engine',
                               'mmseg.evaluation', 'mmseg.models',
                               'mmseg.visualization'],
                      allow_failed_imports=False)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(
    type='SegDataPreProcessor', mean={mean}, std={std}, bgr_to_rgb=True,
    pad_val=0, seg_pad_val=255, size=({size}, {size}))
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='ResNet', depth=18, stem_channels={base}, base_channels={base},
        deep_stem=False, num_stages=4, out_indices=(0, 1, 2, 3),
        strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4), contract_dilation=True,
        norm_cfg=norm_cfg, norm_eval=False, style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint='<PRETRAIN: --pretrained>',
                      prefix='backbone.')),
    decode_head=dict(
        type='FCNHead', in_channels={c5}, in_index=3, channels={head},
        num_convs=2, concat_input=True, dropout_ratio=0.1,
        num_classes={classes}, norm_cfg=norm_cfg, align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                         loss_weight=1.0)),
    train_cfg=dict(), test_cfg=dict(mode='whole'))
metainfo = dict(classes={names}, palette={palette})
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
dataset = dict(type='BaseSegDataset', data_root={root!r}, metainfo=metainfo,
               img_suffix='.png', seg_map_suffix='.png')
train_dataloader = dict(
    batch_size={batch}, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset, pipeline=train_pipeline, data_prefix=dict(
        img_path='img_dir/train', seg_map_path='ann_dir/train')))
val_dataloader = dict(
    batch_size=16, num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(dataset, pipeline=test_pipeline, data_prefix=dict(
        img_path='img_dir/val', seg_map_path='ann_dir/val')))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator
optim_wrapper = dict(type='OptimWrapper', optimizer=dict(
    type='SGD', lr={lr}, momentum=0.9, weight_decay=5e-4))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0,
                        end={iters}, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters={iters},
                 val_interval={iters})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval={log_every},
                log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False,
                    interval={never}, save_last=False),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False,
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends,
                  name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
"""


def write_fcn_config(path, args, data_root):
    from mmmask.datasets.builtin import DENSE_CLASSES
    rng = np.random.default_rng(0)
    palette = [[0, 0, 0]] + rng.integers(0, 256, (10, 3)).tolist()
    with open(path, 'w') as f:
        f.write(FCN_CONFIG.format(
            base=args.base_channels, c5=args.base_channels * 8,
            head=args.base_channels * 2, classes=len(DENSE_CLASSES),
            names=tuple(DENSE_CLASSES), palette=palette,
            mean=list(MEAN), std=list(STD), size=args.image_size,
            root=osp.abspath(data_root), batch=args.ft_batch, lr=args.ft_lr,
            iters=args.ft_iters, log_every=max(1, args.ft_iters // 5),
            never=args.ft_iters + 1))


def finetune(config, ckpt, work_dir, seed):
    """mmseg's runner on ``config`` from ``ckpt``; returns (mIoU %,
    seconds)."""
    cmd = [sys.executable,
           osp.join(HERE, 'mmsegmentation', 'train.py'), config,
           '--pretrained', ckpt, '--work-dir', work_dir,
           '--cfg-options', f'randomness.seed={seed}']
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(f'mmseg fine-tuning failed (exit '
                           f'{proc.returncode}): {" ".join(cmd)}\n'
                           f'{proc.stdout[-3000:]}')
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                          'scalars.json')), reverse=True):
        with open(path) as f:
            scores = [json.loads(ln)['mIoU'] for ln in f
                      if '"mIoU"' in ln]
        if scores:
            return float(scores[-1]), seconds
    raise RuntimeError(f'no mIoU logged in {work_dir}')


def spread(values):
    return max(values) - min(values) if len(values) > 1 else 0.0


def main(argv=None):
    args = parse_args(argv)
    ls.quiet_logs()  # init_weights logs every tensor
    if args.threads:
        torch.set_num_threads(args.threads)
    from mmmask.datasets.builtin import dense_splits
    t0 = time.perf_counter()
    splits = dense_splits(args.num_train, args.num_val, args.image_size)
    data_root = osp.join(args.work_dir, 'data')
    write_dataset(data_root, splits)
    config = osp.join(args.work_dir, 'fcn_r18-d8_dense_digits.py')
    write_fcn_config(config, args, data_root)
    train_x = torch.from_numpy(splits[0][0]).permute(0, 3, 1, 2).contiguous()

    rows = {name: dict(miou=[], steps=0, sps=[], ft_s=[])
            for name in args.methods}
    for seed in args.seeds:
        for name in args.methods:
            run_dir = osp.join(args.work_dir, f'{name}_seed{seed}')
            os.makedirs(run_dir, exist_ok=True)
            ckpt = osp.join(run_dir, 'pretrained.pth')
            steps, sps = pretrain_checkpoint(name, args, seed, train_x, ckpt)
            miou, ft_s = finetune(config, ckpt, osp.join(run_dir, 'fcn'),
                                  seed)
            row = rows[name]
            row['miou'].append(miou)
            row['steps'] = steps
            row['sps'].append(sps)
            row['ft_s'].append(ft_s)
            print(f'{name} seed {seed}: {steps} pretraining steps, mIoU '
                  f'{miou:.2f} (fine-tuning {ft_s:.0f} s)', flush=True)

    def diff(name, ref):
        if ref not in rows or name == ref:
            return '-'
        d = [a - b for a, b in zip(rows[name]['miou'], rows[ref]['miou'])]
        return f'{statistics.mean(d):+.2f} ({spread(d):.2f})'

    print(f'\n## dense_signal: composited digits {args.image_size} px '
          f'({args.num_train} train / {args.num_val} val, 11 classes), '
          f'ResNet-18 base {args.base_channels}, {args.view_size} px views, '
          f'batch {args.batch}, queue {args.queue_len}, {args.steps} '
          f'pretraining steps per method; FCN R18-D8 through mmseg, '
          f'{args.ft_iters} iterations of batch {args.ft_batch}, lr '
          f'{args.ft_lr} poly; seeds {" ".join(map(str, args.seeds))}; '
          f'{torch.get_num_threads()} threads; '
          f'{time.perf_counter() - t0:.0f} s in all\n')
    print('| method | steps | s/step | mIoU per seed | mIoU mean | spread | '
          'vs random init (spread) | vs mmmask MoCo v2 (spread) |')
    print('|---|---|---|---|---|---|---|---|')
    for name, r in rows.items():
        sps = [s for s in r['sps'] if s == s]  # random init: no steps
        sps = f'{statistics.mean(sps):.3f}' if sps else '-'
        print(f"| {name} | {r['steps']} | {sps} | "
              + ' '.join(f'{m:.2f}' for m in r['miou'])
              + f" | {statistics.mean(r['miou']):.2f} | "
              f"{spread(r['miou']):.2f} | {diff(name, 'random')} | "
              f"{diff(name, REFERENCE)} |")
    return rows


if __name__ == '__main__':
    main()
