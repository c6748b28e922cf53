"""Fine-tune a downstream model (mmdet, mmseg, mmpretrain) from a config,
with a pretrained mmmask checkpoint. The mmdet and mmseg fronts
(``tools/benchmarks/mmdetection/train.py``, ``.../mmsegmentation/train.py``)
fix ``--scope``; the wheels of mmdet and mmseg do not ship their
``tools/train.py``.

    python tools/benchmarks/downstream_train.py --scope mmdet CONFIG \
        [--pretrained CKPT] [--no-check-pretrained] [--work-dir DIR]
        [--resume [auto|PATH]] [--amp] [--auto-scale-lr]
        [--cfg-options K=V ...] [--launcher ...]

The checkpoint goes through mmengine's own ``PretrainedInit``, loader and
file backend, as in a stock mmdet / mmseg checkout; what ``--pretrained``
and the pre-flight check add is described in ``mmmask/apis/downstream.py``.
"""
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isdir(osp.join(ROOT, 'mmmask')) and ROOT not in sys.path:
    sys.path.insert(0, ROOT)  # the checkout's mmmask first

from mmmask.apis.downstream import main  # noqa: E402

if __name__ == '__main__':
    sys.exit(main())
