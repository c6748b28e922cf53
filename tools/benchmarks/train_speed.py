"""Training-step speed: mmmask vs mmpretrain vs the bare-PyTorch floor.

For each method (MoCo v2, DenseCL) and one device, measured in one run,
interleaved and repeated (median of ``--repeats``, and the spread between
the fastest and the slowest step; each round runs the variants in a new
random order, so that no variant always follows the same one):

(a) ``mmmask``: ``model.train_step`` of mmmask's algorithm (preprocessing,
    loss, backward, SGD step, EMA, enqueue);
(b) ``mmpretrain``: ``train_step`` of mmpretrain's ``MoCo`` / ``DenseCL`` with
    the same backbone, batch, image size and weights;
(c) ``floor``: the method written as bare PyTorch with only the work it must
    do (query encoder forward + backward, key encoder forward and EMA, the neck
    layers, the loss matmuls against the queue, the SGD step, the enqueue);
(d) the data pipeline alone: images/s of the config's train dataloader (on
    the demo images when the config's data root is missing);
(e) with ``--supervised``: images/s of a supervised training step of the
    same ResNet (mmpretrain ``ImageClassifier``, 1000 classes, one view,
    same batch, image size, AMP and memory format), measured after the
    others with the same warm-up and repeats; each method's images/s is
    then also given as ``img/s / (supervised img/s / 1.3)`` (a MoCo step
    adds a key-encoder forward, about 1/3 of a forward + backward; issue
    17's goal is >= 0.7 on a GPU).

The ratios (mmmask/mmpretrain, mmmask/floor, DenseCL/MoCo v2) are medians of
the per-round ratios (see :func:`paired_ratio`).

Peak memory: CUDA max allocated per variant; on the CPU, the peak RSS of a
fresh subprocess that runs two steps of that variant alone, with glibc's
mmap threshold fixed (``MALLOC_MMAP_THRESHOLD_``) so that every large tensor
is its own mapping and is returned to the system when freed: the peak is
then the live memory (weights, activations, queues), not what the heap kept
from the other variants built for the weights (with glibc's default dynamic
threshold the same probe scattered by +-100 MiB between runs).

Example (the numbers in docs/benchmarks.md)::

    python tools/benchmarks/train_speed.py --threads 2
    python tools/benchmarks/train_speed.py --depth 18 --img 64 --batch 4 \
        --queue-len 1024 --repeats 2 --warmup 1 --data-batches 2  # seconds
    # on a GPU (tools/gpu_check.sh runs both)
    python tools/benchmarks/train_speed.py --device cuda --batch 64
    python tools/benchmarks/train_speed.py --device cuda --batch 64 \
        --amp --channels-last --supervised
"""
import argparse
import copy
import json
import math
import os
import os.path as osp
import random
import statistics
import subprocess
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
for _path in (ROOT, osp.dirname(osp.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

CONFIGS = dict(mocov2='configs/mocov2_r50.py', densecl='configs/densecl_r50.py')
VARIANTS = ('mmmask', 'mmpretrain', 'floor')


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--methods', nargs='+', default=['mocov2', 'densecl'],
                   choices=sorted(CONFIGS))
    p.add_argument('--config', action='append', default=[],
                   metavar='METHOD=PATH',
                   help='use another config for a method, e.g. '
                   'densecl=configs/densecl_r50.py')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available()
                   else 'cpu')
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--img', type=int, default=224)
    p.add_argument('--queue-len', type=int, default=65536)
    p.add_argument('--repeats', type=int, default=9)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=None,
                   help='torch.set_num_threads (default: torch default)')
    p.add_argument('--amp', action='store_true', help='bf16/fp16 autocast')
    p.add_argument('--channels-last', action='store_true')
    p.add_argument('--compile', action='store_true',
                   help='torch.compile the backbones')
    p.add_argument('--workers', type=int, default=2,
                   help='data loader workers for the pipeline measurement')
    p.add_argument('--data-batches', type=int, default=10)
    p.add_argument('--skip-data', action='store_true')
    p.add_argument('--skip-memory', action='store_true')
    p.add_argument('--supervised', action='store_true',
                   help='also time a supervised ResNet training step')
    p.add_argument('--json', default=None, help='also write results here')
    # internal: one variant's memory in a subprocess
    p.add_argument('--_memory-probe', default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# building the three variants on the same weights
# --------------------------------------------------------------------------
def method_cfg(method: str, args):
    from mmengine.config import Config
    path = dict(CONFIGS, **dict(c.split('=', 1) for c in args.config))[method]
    cfg = Config.fromfile(osp.join(ROOT, path) if not osp.isabs(path) else path)
    model = copy.deepcopy(cfg.model.to_dict())
    model['queue_len'] = args.queue_len
    model['backbone']['depth'] = args.depth
    channels = 512 if args.depth in (18, 34) else 2048
    model['neck']['in_channels'] = channels
    # the model step alone, in both libraries: normalisation only (the
    # split pipeline's device augmentation is timed by pipeline_speed.py)
    pre = model['data_preprocessor']
    model['data_preprocessor'] = dict(
        type='SelfSupDataPreprocessor', mean=pre['mean'], std=pre['std'],
        to_rgb=pre.get('to_rgb', True))
    return cfg, model


def build_mmmask(model_cfg):
    from mmmask.registry import MODELS
    return MODELS.build(model_cfg)


def build_mmpretrain(method: str, model_cfg, mmmask_model):
    import mmpretrain.models  # noqa: F401
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS

    from mmmask.engine.checkpoint.convert_mmpretrain import (
        mmmask_to_mmpretrain, momentum_to_mmpretrain)
    neck = model_cfg['neck']
    head = dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                temperature=model_cfg['head'].get('temperature', 0.2))
    common = dict(backbone=model_cfg['backbone'], head=head,
                  queue_len=model_cfg['queue_len'],
                  feat_dim=model_cfg['feat_dim'],
                  momentum=momentum_to_mmpretrain(model_cfg['momentum']),
                  data_preprocessor=model_cfg.get('data_preprocessor'))
    # mmpretrain's scope: a default scope left as 'mmmask' by an earlier
    # build in this process would resolve 'DenseCL' to mmmask's class
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ref = _build_reference(MODELS, method, model_cfg, neck, common)
    ref.load_state_dict(mmmask_to_mmpretrain(mmmask_model.state_dict(), method))
    return ref


def _build_reference(MODELS, method, model_cfg, neck, common):
    """mmpretrain's DenseCL or MoCo with mmmask's hyper-parameters."""
    if method == 'densecl':
        ref = MODELS.build(dict(
            type='DenseCL', loss_lambda=model_cfg['loss_lambda'],
            neck=dict(type='DenseCLNeck', in_channels=neck['in_channels'],
                      hid_channels=neck['hid_channels'],
                      out_channels=neck['out_channels'],
                      num_grid=neck.get('num_grid')), **common))
    else:
        ref = MODELS.build(dict(
            type='MoCo',
            neck=dict(type='MoCoV2Neck', in_channels=neck['in_channels'],
                      hid_channels=neck['hid_channels'],
                      out_channels=neck['out_channels']), **common))
    return ref


class Floor(nn.Module):
    """The method as bare PyTorch: nothing but the work it must do."""

    def __init__(self, mmmask_model, dense: bool, tau: float, lam: float,
                 momentum: float):
        super().__init__()
        self.backbone = copy.deepcopy(mmmask_model.backbone)
        neck = mmmask_model.neck
        self.mlp = copy.deepcopy(neck.global_mlp if dense else neck.mlp)
        self.dense_mlp = copy.deepcopy(neck.dense_mlp) if dense else None
        self.key = nn.ModuleList([copy.deepcopy(self.backbone),
                                  copy.deepcopy(self.mlp)] +
                                 ([copy.deepcopy(self.dense_mlp)]
                                  if dense else [])).requires_grad_(False)
        self.register_buffer('queue', mmmask_model.queue.feats.clone())
        if dense:
            self.register_buffer('queue2',
                                 mmmask_model.dense_queue.feats.clone())
        self.dense, self.tau, self.lam, self.m = dense, tau, lam, momentum
        self.ptr = 0

    def _heads(self, feat, mlp, dense_mlp):
        g = F.normalize(mlp(feat.mean((2, 3))), dim=1)
        if dense_mlp is None:
            return g, None, None
        d = dense_mlp(feat).flatten(2)
        return g, F.normalize(d, dim=1), F.normalize(d.mean(2), dim=1)

    def step(self, im_q, im_k, opt):
        q_feat = self.backbone(im_q)[-1]
        q, q_d, _ = self._heads(q_feat, self.mlp, self.dense_mlp)
        with torch.no_grad():
            online = [p for m in (self.backbone, self.mlp, self.dense_mlp)
                      if m is not None for p in m.parameters()]
            torch._foreach_lerp_(list(self.key.parameters()), online,
                                 1 - self.m)
            k_feat = self.key[0](im_k)[-1]
            k, k_d, k_p = self._heads(k_feat, self.key[1],
                                      self.key[2] if self.dense else None)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ self.queue.t()],
                           1) / self.tau
        zeros = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
        loss = F.cross_entropy(logits, zeros)
        if self.dense:
            with torch.no_grad():
                qb = F.normalize(q_feat.flatten(2), dim=1)
                kb = F.normalize(k_feat.flatten(2), dim=1)
                idx = torch.bmm(qb.transpose(1, 2), kb).argmax(2)
                k_pos = torch.gather(k_d, 2, idx.unsqueeze(1).expand_as(k_d))
            qr = q_d.transpose(1, 2).reshape(-1, q_d.shape[1])
            kr = k_pos.transpose(1, 2).reshape(-1, q_d.shape[1])
            logits_d = torch.cat([(qr * kr).sum(1, keepdim=True),
                                  qr @ self.queue2.t()], 1) / self.tau
            loss = (1 - self.lam) * loss + self.lam * F.cross_entropy(
                logits_d, zeros.new_zeros(qr.shape[0]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            n = k.shape[0]
            self.queue[self.ptr:self.ptr + n] = k
            if self.dense:
                self.queue2[self.ptr:self.ptr + n] = k_p
            self.ptr = (self.ptr + n) % (self.queue.shape[0] - n + 1)
        return loss


def make_batch(args, device, seed=0):
    """Two uint8 views (B, 3, H, W) as a data loader gives them, and the
    normalised float views the floor takes."""
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    views = [torch.randint(0, 256, (args.batch, 3, args.img, args.img),
                           generator=g, dtype=torch.uint8) for _ in range(2)]
    data = dict(inputs=[v for v in views],
                data_samples=[DataSample() for _ in range(args.batch)])
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    floats = [((v.flip(1).float() - mean) / std).to(device) for v in views]
    if args.channels_last:
        floats = [f.contiguous(memory_format=torch.channels_last)
                  for f in floats]
    return data, floats


def make_steps(method: str, args, device, only=None):
    """{variant: zero-argument callable doing one training step}; ``only``
    keeps one variant (the others are built for the weights, then freed)."""
    from mmengine.optim import build_optim_wrapper
    _, model_cfg = method_cfg(method, args)
    torch.manual_seed(0)
    ours = build_mmmask(model_cfg)
    ours.init_weights()
    ref = build_mmpretrain(method, model_cfg, ours)
    floor = Floor(ours, method == 'densecl', model_cfg['head']['temperature'],
                  model_cfg.get('loss_lambda', 0.0), model_cfg['momentum'])
    keep = set(VARIANTS if only is None else [only])
    if 'floor' not in keep:
        floor = None
    if 'mmpretrain' not in keep:
        ref = None
    steps = {}
    data, floats = make_batch(args, device)
    optim = dict(type='AmpOptimWrapper' if args.amp else 'OptimWrapper',
                 optimizer=dict(type='SGD', lr=0.03, momentum=0.9,
                                weight_decay=1e-4))
    if args.amp and device.type == 'cuda':
        optim['dtype'] = 'bfloat16'
    for name, model in (('mmmask', ours), ('mmpretrain', ref)):
        if name not in keep:
            continue
        model.to(device).train()
        if args.channels_last:
            model.to(memory_format=torch.channels_last)
        if args.compile:
            model.backbone = torch.compile(model.backbone)
        wrapper = build_optim_wrapper(model, copy.deepcopy(optim)) \
            if args.amp and device.type == 'cuda' else build_optim_wrapper(
                model, dict(type='OptimWrapper', optimizer=optim['optimizer']))
        steps[name] = (lambda m=model, w=wrapper: m.train_step(data, w))
    if floor is None:
        return steps
    floor.to(device).train()
    if args.channels_last:
        floor.to(memory_format=torch.channels_last)
    if args.compile:
        floor.backbone = torch.compile(floor.backbone)
    opt = torch.optim.SGD([p for p in floor.parameters() if p.requires_grad],
                          lr=0.03, momentum=0.9, weight_decay=1e-4)

    def floor_step():
        dtype = torch.bfloat16 if device.type == 'cuda' else torch.float32
        with torch.autocast(device.type, dtype=dtype,
                            enabled=args.amp and device.type == 'cuda'):
            return floor.step(floats[0], floats[1], opt)

    steps['floor'] = floor_step
    return steps


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


# --------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------
def time_steps(args, device):
    """{(method, variant): [seconds per step]} measured interleaved."""
    steps = {m: make_steps(m, args, device) for m in args.methods}
    for m in steps:
        for v in VARIANTS:
            for _ in range(args.warmup):
                steps[m][v]()
    times = {(m, v): [] for m in steps for v in VARIANTS}
    peak = {}
    order = random.Random(0)
    for _ in range(args.repeats):
        for m in steps:
            for v in order.sample(VARIANTS, len(VARIANTS)):
                if device.type == 'cuda':
                    torch.cuda.reset_peak_memory_stats()
                sync(device)
                t0 = time.perf_counter()
                steps[m][v]()
                sync(device)
                times[(m, v)].append(time.perf_counter() - t0)
                if device.type == 'cuda':
                    peak[(m, v)] = max(peak.get((m, v), 0),
                                       torch.cuda.max_memory_allocated())
    return times, peak


def memory_probe(args, device):
    """Run in a subprocess: build one variant alone, reset the peak RSS
    (Linux ``clear_refs``), run two steps, print the peak RSS (MiB) during
    them (weights, activations, queues; not the import of the libraries)."""
    import gc
    method, variant = args._memory_probe.split(':')
    args.methods = [method]
    step = make_steps(method, args, device, only=variant)[variant]
    step()  # first step allocates optimizer state and caches
    gc.collect()
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')
    step()
    step()
    with open('/proc/self/status') as f:
        hwm = [ln for ln in f if ln.startswith('VmHWM')][0]
    print(json.dumps(dict(rss_mib=int(hwm.split()[1]) / 1024)))


# glibc: allocations of at least this many bytes get their own mmap and go
# back to the system on free (a fixed value also turns off the dynamic
# threshold that lets freed large blocks stay in the heap)
MMAP_THRESHOLD = 128 * 1024


def cpu_peak_rss(args):
    out = {}
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_=str(MMAP_THRESHOLD))
    base = [sys.executable, osp.abspath(__file__), '--device', 'cpu',
            '--depth', str(args.depth), '--batch', str(args.batch),
            '--img', str(args.img), '--queue-len', str(args.queue_len)]
    if args.threads:
        base += ['--threads', str(args.threads)]
    for c in args.config:
        base += ['--config', c]
    if args.channels_last:
        base.append('--channels-last')
    for m in args.methods:
        for v in VARIANTS:
            res = subprocess.run(base + ['--_memory-probe', f'{m}:{v}'],
                                 capture_output=True, text=True, cwd=ROOT,
                                 env=env)
            if res.returncode != 0:
                raise RuntimeError(f'memory probe {m}:{v} failed:\n'
                                   f'{res.stderr[-2000:]}')
            out[(m, v)] = json.loads(res.stdout.strip().splitlines()[-1])[
                'rss_mib']
    return out


def data_throughput(method: str, args):
    """Images/s of the config's train dataloader (views made, collated)."""
    from mmengine.runner import Runner

    import mmmask.datasets  # noqa: F401
    from mmengine.registry import init_default_scope
    init_default_scope('mmmask')
    cfg, _ = method_cfg(method, args)
    loader = copy.deepcopy(cfg.train_dataloader.to_dict())
    root = loader['dataset'].get('data_root', '')
    if not osp.isdir(osp.join(ROOT, root)) and not osp.isdir(root):
        demo = osp.join(ROOT, 'data', 'demo_images')
        if not osp.isdir(demo):
            subprocess.run([sys.executable, osp.join(ROOT, 'tools',
                                                     'make_demo_data.py')],
                           check=True, cwd=ROOT, capture_output=True)
        loader['dataset'] = dict(type='CustomDataset', data_root=demo,
                                 with_label=False,
                                 pipeline=loader['dataset']['pipeline'])
    loader.update(batch_size=args.batch, num_workers=args.workers,
                  persistent_workers=args.workers > 0)
    dl = Runner.build_dataloader(loader, seed=0)
    it = iter(dl)
    next(it)  # start the workers
    n, t0 = 0, time.perf_counter()
    for _ in range(args.data_batches):
        try:
            batch = next(it)
        except StopIteration:
            it = iter(dl)
            batch = next(it)
        n += len(batch['inputs'][0])
    return n / (time.perf_counter() - t0)


def supervised_step_time(args, device):
    """Seconds per step (median of ``--repeats`` after ``--warmup``) of a
    supervised mmpretrain ``ImageClassifier`` (the same ResNet, global
    pooling, a 1000-class linear head, cross-entropy) on ``--batch`` images
    of ``--img`` px, with the same AMP / channels_last settings."""
    import mmpretrain.models  # noqa: F401
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import DefaultScope
    from mmpretrain.registry import MODELS
    from mmpretrain.structures import DataSample
    channels = 512 if args.depth in (18, 34) else 2048
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet', depth=args.depth),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=1000,
                      in_channels=channels,
                      loss=dict(type='CrossEntropyLoss')),
            data_preprocessor=dict(type='ClsDataPreprocessor',
                                   mean=[123.675, 116.28, 103.53],
                                   std=[58.395, 57.12, 57.375],
                                   to_rgb=True)))
    model.to(device).train()
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    optim = dict(type='OptimWrapper', optimizer=dict(
        type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4))
    if args.amp and device.type == 'cuda':
        optim.update(type='AmpOptimWrapper', dtype='bfloat16')
    wrapper = build_optim_wrapper(model, optim)
    g = torch.Generator().manual_seed(0)
    data = dict(inputs=torch.randint(0, 256, (args.batch, 3, args.img,
                                              args.img), generator=g,
                                     dtype=torch.uint8),
                data_samples=[DataSample().set_gt_label(i % 1000)
                              for i in range(args.batch)])
    for _ in range(args.warmup):
        model.train_step(data, wrapper)
    times = []
    for _ in range(args.repeats):
        sync(device)
        t0 = time.perf_counter()
        model.train_step(data, wrapper)
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def paired_ratio(times, num: tuple, den: tuple) -> float:
    """Median over rounds of the step time of ``num`` / that of ``den`` in
    the same round (keys ``(method, variant)``): a round runs every variant
    back to back, so a slow phase of the machine (it moves single steps by
    up to 30 % here) slows both sides of a pair and cancels, where a ratio
    of two medians keeps it."""
    return statistics.median(a / b for a, b in zip(times[num], times[den]))


def fmt(x, unit=''):
    return '-' if x is None or (isinstance(x, float) and math.isnan(x)) \
        else f'{x:.3f}{unit}'


def main(argv=None):
    args = parse_args(argv)
    from learning_signal import quiet_logs
    quiet_logs()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args._memory_probe:
        return memory_probe(args, device)
    times, cuda_peak = time_steps(args, device)
    med = {k: statistics.median(v) for k, v in times.items()}
    if device.type == 'cuda':
        peak = {k: v / 2**20 for k, v in cuda_peak.items()}
        mem_label = 'CUDA max alloc MiB'
    elif args.skip_memory:
        peak, mem_label = {}, 'peak RSS MiB'
    else:
        peak, mem_label = cpu_peak_rss(args), 'peak RSS MiB'
    data = {} if args.skip_data else {m: data_throughput(m, args)
                                      for m in args.methods}

    dev_name = torch.cuda.get_device_name() if device.type == 'cuda' else \
        f'CPU, {torch.get_num_threads()} threads'
    print(f'\n## train_speed: R{args.depth}, batch {args.batch}, '
          f'{args.img} px, queue {args.queue_len}, {dev_name}, '
          f'amp={args.amp}, channels_last={args.channels_last}, '
          f'compile={args.compile}, median of {args.repeats}\n')
    print(f'| method | variant | s/step (median) | s/step (min-max) | '
          f'{mem_label} |')
    print('|---|---|---|---|---|')
    for m in args.methods:
        for v in VARIANTS:
            t = times[(m, v)]
            print(f'| {m} | {v} | {fmt(med[(m, v)])} | '
                  f'{fmt(min(t))}-{fmt(max(t))} | '
                  f'{fmt(peak.get((m, v)))} |')
    print('\n| method | mmmask/mmpretrain | mmmask/floor | memory '
          'mmmask/mmpretrain | pipeline img/s | model img/s | '
          'pipeline/model |')
    print('|---|---|---|---|---|---|---|')
    rows = {}
    for m in args.methods:
        r = dict(vs_mmpretrain=paired_ratio(times, (m, 'mmmask'),
                                            (m, 'mmpretrain')),
                 vs_floor=paired_ratio(times, (m, 'mmmask'), (m, 'floor')),
                 mem=(peak[(m, 'mmmask')] / peak[(m, 'mmpretrain')]
                      if peak else float('nan')),
                 data=data.get(m, float('nan')),
                 model=args.batch / med[(m, 'mmmask')])
        r['data_vs_model'] = r['data'] / r['model']
        rows[m] = r
        print(f"| {m} | {fmt(r['vs_mmpretrain'])} | {fmt(r['vs_floor'])} | "
              f"{fmt(r['mem'])} | {fmt(r['data'])} | {fmt(r['model'])} | "
              f"{fmt(r['data_vs_model'])} |")
    if {'mocov2', 'densecl'} <= set(args.methods):
        ratio = paired_ratio(times, ('densecl', 'mmmask'),
                             ('mocov2', 'mmmask'))
        print(f'\nDenseCL/MoCo v2 (mmmask step): {ratio:.3f}')
        rows['densecl_vs_mocov2'] = ratio
    if args.supervised:
        sup = args.batch / supervised_step_time(args, device)
        rows['supervised_img_s'] = sup
        print(f'\nsupervised ResNet-{args.depth} step (mmpretrain '
              f'ImageClassifier): {sup:.1f} img/s')
        for m in args.methods:
            rows[m]['vs_supervised'] = rows[m]['model'] / (sup / 1.3)
            print(f"{m}: {rows[m]['model']:.1f} img/s = "
                  f"{rows[m]['vs_supervised']:.3f} x (supervised / 1.3)")
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(median_s={f'{m}/{v}': t for (m, v), t in
                                     med.items()},
                           step_s={f'{m}/{v}': t for (m, v), t in
                                   times.items()},
                           peak_mib={f'{m}/{v}': t for (m, v), t in
                                     peak.items()},
                           ratios=rows, args=vars(args)), f, indent=1)
    return rows


if __name__ == '__main__':
    main()
