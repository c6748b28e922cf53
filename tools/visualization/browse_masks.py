"""Write a PNG grid of the views (with masks and regions) a config makes;
what each row shows: ``mmmask/visualization/masks.py``.

    python tools/visualization/browse_masks.py CONFIG \
        [--images DIR] [--show-number 4] [--output-dir work_dirs/browse] \
        [--seed 0] [--cfg-options KEY=VALUE ...]

``--images DIR`` takes the images of a folder instead of the config's
dataset (useful when the dataset is not on this machine).
"""
import argparse
import os.path as osp
import sys

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isdir(osp.join(REPO_ROOT, 'mmmask')) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmmask.visualization.masks import rows_for, save_grid  # noqa: E402


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--images', help='take the images of this folder '
                   'instead of the config\'s dataset')
    p.add_argument('--show-number', type=int, default=4,
                   help='images (rows) to show')
    p.add_argument('--output-dir', default='work_dirs/browse_masks')
    p.add_argument('--checkpoint', help='weights for the in-model masks '
                   '(default: the model\'s initial weights)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config
    if not osp.isfile(args.config):
        sys.exit(f'error: config file not found: {args.config}')
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    try:
        rows = rows_for(cfg, args.images, args.show_number, args.checkpoint,
                        args.seed)
    except (FileNotFoundError, RuntimeError, KeyError) as e:
        sys.exit(f'error: {e}')
    name = osp.splitext(osp.basename(args.config))[0]
    path = osp.join(args.output_dir, f'{name}.png')
    shape = save_grid(rows, path)
    print(f'wrote {path} ({len(rows)} rows, {shape[1]} x {shape[0]} px)')


if __name__ == '__main__':
    main()
