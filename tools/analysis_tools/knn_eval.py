"""Weighted kNN evaluation of a pretrained backbone (InstDisc protocol).

    python tools/analysis_tools/knn_eval.py CONFIG CHECKPOINT
        [--k 20] [--temperature 0.07] [--prefix backbone.]
        [--cfg-options K=V ...]

CONFIG is a classification config with ``model.backbone``,
``model.data_preprocessor`` (mean / std / to_rgb), ``train_dataloader`` (the
labelled memory bank) and ``val_dataloader`` (the split classified), e.g.
configs/benchmarks/classification/resnet50_linear-8xb32-steplr-100e_in1k.py
(the linear-probe config; its backbone ``init_cfg`` is ignored here). The
backbone is loaded from CHECKPOINT with a load report (tensors loaded,
missing / unexpected keys); a checkpoint of another architecture is an
error. Prints and returns top-1 / top-5 (percent).
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def parse_args(argv=None):
    from mmengine.config import DictAction
    parser = argparse.ArgumentParser(description='weighted kNN evaluation')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--k', type=int, default=20)
    parser.add_argument('--temperature', type=float, default=0.07)
    parser.add_argument('--prefix', default='backbone.',
                        help="checkpoint prefix of the backbone ('' for a "
                        'bare backbone state dict)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    import mmpretrain.models  # noqa: F401
    from mmmask.engine.checkpoint import load_checkpoint_file
    from mmmask.evaluation.knn import extract_features, knn_accuracy
    from mmmask.engine.checkpoint.transfer import load_pretrained
    from mmpretrain.registry import MODELS

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg', None)
    backbone_cfg['frozen_stages'] = -1
    backbone = MODELS.build(backbone_cfg)
    load_pretrained(backbone, args.checkpoint, prefix=args.prefix,
                    name='backbone', loader=load_checkpoint_file)
    pre = cfg.model.get('data_preprocessor') or cfg.get(
        'data_preprocessor') or {}
    mean = pre.get('mean', [123.675, 116.28, 103.53])
    std = pre.get('std', [58.395, 57.12, 57.375])
    to_rgb = bool(pre.get('to_rgb', pre.get('bgr_to_rgb', False)))
    train = Runner.build_dataloader(cfg.train_dataloader)
    val = Runner.build_dataloader(cfg.val_dataloader)
    train_x, train_y = extract_features(backbone, train, mean, std, to_rgb)
    val_x, val_y = extract_features(backbone, val, mean, std, to_rgb)
    acc = knn_accuracy(train_x, train_y, val_x, val_y, k=args.k,
                       temperature=args.temperature)
    print(f'kNN (k={args.k}, T={args.temperature}): ' +
          ', '.join(f'{k} {v:.2f}' for k, v in acc.items()))
    return acc


if __name__ == '__main__':
    main()
