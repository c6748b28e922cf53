"""Fine-tune an mmdet detector from a pretrained mmmask checkpoint, as
mmdet's own ``tools/train.py`` would (the mmdet wheel does not ship it):

    python tools/benchmarks/mmdetection/train.py CONFIG [--pretrained CKPT]
        [--work-dir DIR] [--resume [auto|PATH]] [--amp] [--auto-scale-lr]
        [--cfg-options K=V ...] [--launcher {none,pytorch,slurm,mpi}]

The default scope is ``mmdet``; the mmmask package is never imported (see
``tools/benchmarks/downstream_train.py`` for what the flags do).
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from downstream_train import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main(scope='mmdet'))
