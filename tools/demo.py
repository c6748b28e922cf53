"""A few minutes of real DenseCL pretraining on the CPU, from nothing, and
what it learned (the steps: ``mmmask/apis/demo.py``).

    .venv/bin/python tools/demo.py [extra tools/train.py args]

Extra arguments go to tools/train.py, e.g. ``--cfg-options
train_cfg.max_iters=20`` for a quick look.
"""
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(REPO_ROOT, 'mmmask')) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)  # the checkout's mmmask first

from mmmask.apis.demo import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
