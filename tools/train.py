"""Train (pretrain) a model from an mmmask config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|PATH]]
        [--amp] [--no-validate] [--auto-scale-lr] [--cfg-options K=V ...]
        [--launcher {none,pytorch,slurm,mpi}]

Multi-process runs go through tools/dist_train.sh (torchrun) or
tools/slurm_train.sh. On a machine without CUDA a distributed run uses CPU
processes and the gloo backend.

Mistakes in the command line or config end the run with one
``train.py: error: ...`` line on stderr and exit status 2; bad input met
while training (an ``mmmask.errors.MMMaskError``) with one such line and
exit status 1. The policy behind each flag is in ``mmmask/apis/train.py``.
"""
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if osp.isdir(osp.join(REPO_ROOT, 'mmmask')) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)  # the checkout's mmmask first

from mmmask.apis.train import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
