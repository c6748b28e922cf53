"""The DenseCL demo behind ``tools/demo.py``: a few minutes of real
pretraining on the CPU, from nothing, and what it learned.

1. writes the built-in demo images to data/demo_images/ if they are missing
   (tools/make_demo_data.py);
2. probes the randomly initialised backbone (same seed as the run): weighted
   kNN (k=20, T=0.07, ``mmmask.evaluation.knn``) on the pooled C5 features
   of the scikit-learn digits that the demo images leave out (597 real
   digits at the demo's image size, split in half: labelled memory / test),
   with 5 labels per class (mean of 10 draws) and with all labels;
3. trains configs/demo/densecl_r18w32_digits_demo.py into
   work_dirs/densecl_r18w32_digits_demo/
   (its config gives the model and schedule);
4. probes the trained backbone the same way and prints before -> after, the
   first and last loss, the time taken, the checkpoint and the commands that
   fine-tune it with mmseg / mmdet.

Extra arguments go to tools/train.py, e.g. ``--cfg-options
train_cfg.max_iters=20`` for a quick look (``--cfg-options`` and
``--work-dir`` are also applied to the probe's random-init backbone and to
where the checkpoint is looked for).
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

# the checkout holding this package (configs/, tools/, data/)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG = 'configs/demo/densecl_r18w32_digits_demo.py'
DATA = 'data/demo_images'
WORK_DIR = 'work_dirs/densecl_r18w32_digits_demo'
SHOTS = 5
# the commands that fine-tune the demo's ResNet-18 with the README's
# launchers (their configs are ResNet-50: the overrides fit them to the
# demo backbone's depth and widths, see transfer_commands)
MMSEG_CMD = (
    'bash tools/benchmarks/mmsegmentation/dist_train.sh '
    'configs/benchmarks/mmsegmentation/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'
    ' {ckpt} 1 --cfg-options {backbone} '
    'model.decode_head.in_channels={c5} model.decode_head.channels=128 '
    'model.auxiliary_head.in_channels={c4} model.auxiliary_head.channels=64')
MMDET_CMD = (
    'bash tools/benchmarks/mmdetection/dist_train.sh '
    'configs/benchmarks/mmdetection/retinanet_r50_fpn_syncbn-1x_coco.py '
    '{ckpt} 1 --cfg-options {backbone} '
    '"model.neck.in_channels=[{c2},{c3},{c4},{c5}]"')


def transfer_commands(cfg, ckpt):
    """(mmseg command, mmdet command) that fine-tune ``ckpt``: the ResNet-50
    benchmark configs with the config's backbone depth and widths (a basic
    block ResNet's C2-C5 have base, 2x, 4x, 8x base channels)."""
    bb = cfg.model.backbone
    depth = int(bb.get('depth', 18))
    base = int(bb.get('base_channels', 64))
    stem = int(bb.get('stem_channels', base))
    expansion = 1 if depth in (18, 34) else 4
    c2, c3, c4, c5 = (base * expansion * 2 ** i for i in range(4))
    backbone = f'model.backbone.depth={depth}'
    if (stem, base) != (64, 64):
        backbone += (f' model.backbone.stem_channels={stem} '
                     f'model.backbone.base_channels={base}')
    fill = dict(ckpt=ckpt, backbone=backbone, c2=c2, c3=c3, c4=c4, c5=c5)
    return MMSEG_CMD.format(**fill), MMDET_CMD.format(**fill)


def run(cmd):
    print('+ ' + ' '.join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def latest_scalars(work_dir: str):
    """Lines of the newest run's vis_data/scalars.json (list of dicts)."""
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    if not files:
        return []
    with open(files[-1]) as f:
        return [json.loads(line) for line in f if line.strip()]


def parse_train_args(argv):
    """The ``--cfg-options`` and ``--work-dir`` of tools/train.py's args."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--work-dir', default=WORK_DIR)
    parser.add_argument('--cfg-options', nargs='+', default=[])
    return parser.parse_known_args(argv)[0]


def load_config(options):
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(osp.join(ROOT, CONFIG))
    if options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--cfg-options', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(
            ['--cfg-options'] + options).cfg_options)
    return cfg


def probe_data(size: int, seed: int = 0):
    """(memory images, labels, test images, labels) of the held-out digits:
    uint8 (N, 3, size, size) RGB, stratified 50/50."""
    import torch
    from sklearn.model_selection import train_test_split

    from mmmask.datasets.builtin import held_out_digits
    images, labels = held_out_digits(size)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    y = torch.from_numpy(labels)
    mem, test = train_test_split(range(len(y)), test_size=0.5,
                                 stratify=labels, random_state=seed)
    return x[mem], y[mem], x[test], y[test]


def probe(backbone, data, mean, std):
    """{'few': 5-shot kNN top-1 %, 'full': all-label kNN top-1 %}."""
    from mmmask.evaluation.knn import (extract_features,
                                       few_shot_knn_accuracy, knn_accuracy)
    feats = []
    for images, labels in ((data[0], data[1]), (data[2], data[3])):
        batches = [(images[i:i + 256], labels[i:i + 256])
                   for i in range(0, len(images), 256)]
        feats.append(extract_features(backbone, batches, mean, std)[0])
    full = knn_accuracy(feats[0], data[1], feats[1], data[3],
                        topk=(1, ))['top1']
    few = few_shot_knn_accuracy(feats[0], data[1], feats[1], data[3],
                                SHOTS, draws=10, seed=0)
    return dict(few=few, full=full)


def random_backbone(cfg):
    """The config's backbone, initialised as the run initialises it from
    its seed (``randomness.seed``)."""
    import mmpretrain.models  # noqa: F401  (mmmask's registries' parents)
    from mmengine.registry import DefaultScope
    from mmengine.runner import set_random_seed

    import mmmask.models  # noqa: F401
    from mmmask.registry import MODELS
    set_random_seed(cfg.get('randomness', {}).get('seed') or 0)
    with DefaultScope.overwrite_default_scope('mmmask'):
        backbone = MODELS.build(cfg.model.backbone)
    backbone.init_weights()
    return backbone


def load_backbone(backbone, ckpt):
    import torch
    state = torch.load(ckpt, map_location='cpu', weights_only=True)
    state = state.get('state_dict', state)
    backbone.load_state_dict({k[len('backbone.'):]: v
                              for k, v in state.items()
                              if k.startswith('backbone.')})
    return backbone


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.chdir(ROOT)
    start = time.time()
    rc = run([sys.executable, 'tools/make_demo_data.py', '--out', DATA])
    if rc:
        return rc
    train_args = parse_train_args(argv)
    cfg = load_config(train_args.cfg_options)
    pre = cfg.model.data_preprocessor
    size = int(cfg.get('crop_size', 64))
    data = probe_data(size)
    t_probe = time.time()
    before = probe(random_backbone(cfg), data, pre['mean'], pre['std'])
    print(f'probe before pretraining (random init): {SHOTS}-shot kNN '
          f'{before["few"]:.1f} %, all-label kNN {before["full"]:.1f} % '
          f'({time.time() - t_probe:.0f} s)', flush=True)

    t_train = time.time()
    rc = run([sys.executable, 'tools/train.py', CONFIG, '--work-dir',
              WORK_DIR] + list(argv))
    if rc:
        print(f'demo: training failed (exit {rc})', file=sys.stderr)
        return rc
    t_end = time.time()
    work_dir = train_args.work_dir
    ckpt = None
    last_ckpt = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last_ckpt):
        with open(last_ckpt) as f:
            ckpt = osp.relpath(f.read().strip(), ROOT)
    if ckpt is None or not osp.isfile(ckpt):
        print(f'demo: no checkpoint in {work_dir}', file=sys.stderr)
        return 1
    after = probe(load_backbone(random_backbone(cfg), ckpt), data,
                  pre['mean'], pre['std'])

    logged = [s for s in latest_scalars(work_dir) if 'loss' in s]
    print('\n==== DenseCL demo done ====')
    print(f'probe: {len(data[1])} labelled / {len(data[3])} test digits '
          f'(scikit-learn digits not in {DATA}, {size} px), weighted kNN on '
          'pooled C5')
    for key, name in (('few', f'{SHOTS}-shot kNN'),
                      ('full', 'all-label kNN')):
        print(f'  {name:>14}: {before[key]:5.1f} % -> {after[key]:5.1f} %  '
              f'({after[key] - before[key]:+.1f})')
    if logged:
        first, last = logged[0], logged[-1]
        print(f'loss at iter {first.get("step")}: {first["loss"]:.4f}   '
              f'loss at iter {last.get("step")}: {last["loss"]:.4f}')
    print(f'time: {time.time() - start:.0f} s in all, '
          f'{t_end - t_train:.0f} s training')
    print(f'checkpoint: {ckpt}')
    print(f'logs: {work_dir}/<timestamp>/ (vis_data/scalars.json has every '
          'logged loss)')
    seg_cmd, det_cmd = transfer_commands(cfg, ckpt)
    print('fine-tune it with mmseg (FCN, PASCAL VOC under data/VOCdevkit):\n'
          f'  {seg_cmd}')
    print('or with mmdet (RetinaNet, COCO under data/coco):\n'
          f'  {det_cmd}')
    return 0
