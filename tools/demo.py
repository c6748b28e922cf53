"""A few minutes of real DenseCL pretraining on the CPU, from nothing.

    .venv/bin/python tools/demo.py [extra tools/train.py args]

1. writes the built-in demo images to data/demo_images/ if they are missing
   (tools/make_demo_data.py);
2. trains configs/demo/densecl_r18_demo.py (ResNet-18, 64 px, 300 iterations)
   into work_dirs/densecl_r18_demo/;
3. prints the first and last logged loss, the time taken and the checkpoint.

Extra arguments go to tools/train.py, e.g. ``--cfg-options
train_cfg.max_iters=20`` for a quick look.
"""
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = 'configs/demo/densecl_r18_demo.py'
DATA = 'data/demo_images'
WORK_DIR = 'work_dirs/densecl_r18_demo'


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


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    os.chdir(ROOT)
    start = time.time()
    rc = run([sys.executable, 'tools/make_demo_data.py', '--out', DATA])
    if rc:
        return rc
    t_train = time.time()
    rc = run([sys.executable, 'tools/train.py', CONFIG, '--work-dir',
              WORK_DIR] + list(argv))
    if rc:
        print(f'demo: training failed (exit {rc})', file=sys.stderr)
        return rc
    end = time.time()

    logged = [s for s in latest_scalars(WORK_DIR) if 'loss' in s]
    print('\n==== DenseCL demo done ====')
    if logged:
        first, last = logged[0], logged[-1]
        print(f'loss at iter {first.get("step")}: {first["loss"]:.4f}   '
              f'loss at iter {last.get("step")}: {last["loss"]:.4f}')
    print(f'time: {end - start:.0f} s in all, {end - t_train:.0f} s training')
    last_ckpt = osp.join(WORK_DIR, 'last_checkpoint')
    if osp.isfile(last_ckpt):
        with open(last_ckpt) as f:
            print(f'checkpoint: {f.read().strip()}')
    print(f'logs: {WORK_DIR}/<timestamp>/ (vis_data/scalars.json has every '
          'logged loss)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
