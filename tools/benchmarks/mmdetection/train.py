"""Fine-tune an mmdet detector from a pretrained mmmask checkpoint, as
mmdet's own ``tools/train.py`` would (the mmdet wheel does not ship it):

    python tools/benchmarks/mmdetection/train.py CONFIG [--pretrained CKPT]
        [--work-dir DIR] [--resume [auto|PATH]] [--amp] [--auto-scale-lr]
        [--cfg-options K=V ...] [--launcher {none,pytorch,slurm,mpi}]

The default scope is ``mmdet``; the flags are those of
``tools/benchmarks/downstream_train.py``.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))
if osp.isdir(osp.join(ROOT, 'mmmask')) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # the checkout's mmmask first

from mmmask.apis.downstream import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main(scope='mmdet'))
