"""Write ImageNet-100 (CMC's 100 classes) from an ImageNet folder; layouts
in and out: ``mmmask/datasets/imagenet100.py``.

    python tools/dataset_converters/make_imagenet100.py IMAGENET_ROOT
        [--out data/imagenet100] [--list-only] [--meta-dir DIR]
        [--classes FILE] [--allow-missing]

The class list is ``tools/dataset_converters/imagenet100.txt`` (CMC's, with
its source); ``--classes`` takes another one (one wnid per line).
"""
import argparse
import os.path as osp
import sys

from mmmask.datasets.imagenet100 import ConvertError, convert

DEFAULT_CLASSES = osp.join(osp.dirname(osp.abspath(__file__)),
                           'imagenet100.txt')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write ImageNet-100 (CMC\'s class list) from an ImageNet '
        'folder in mmpretrain\'s layout.')
    parser.add_argument('root', help='ImageNet folder (train/<wnid>/...)')
    parser.add_argument('--out', help='ImageNet-100 folder to write '
                        '(default: data/imagenet100)')
    parser.add_argument('--list-only', action='store_true',
                        help='write only META_DIR/imagenet100_{train,val}.txt '
                        'relative to ImageNet\'s own train/ and val/')
    parser.add_argument('--meta-dir', help='with --list-only: where the lists '
                        'go (default: ROOT/meta)')
    parser.add_argument('--classes', default=DEFAULT_CLASSES,
                        help='class list, one wnid per line (default: CMC\'s '
                        'ImageNet-100, tools/dataset_converters/'
                        'imagenet100.txt)')
    parser.add_argument('--allow-missing', action='store_true',
                        help='classes missing from ROOT/train are left out '
                        'instead of an error')
    args = parser.parse_args(argv)
    if args.meta_dir and not args.list_only:
        parser.error('--meta-dir goes with --list-only (else use --out)')
    if args.out and args.list_only:
        parser.error('--out makes a folder; with --list-only use --meta-dir')
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args.root, args.classes, out=args.out,
                list_only=args.list_only, meta_dir=args.meta_dir,
                allow_missing=args.allow_missing)
    except (ConvertError, OSError) as err:
        print(f'make_imagenet100.py: error: {err}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
