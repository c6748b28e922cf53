"""Write mmmask's small built-in set of real images, no download (sources,
layout and determinism: ``mmmask/datasets/demo_images.py``).

    python tools/make_demo_data.py                   # data/demo_images/, 1,600
    python tools/make_demo_data.py --out /tmp/x --num 40
"""
import argparse
import sys

from mmmask.datasets.builtin import DEMO_NUM
from mmmask.datasets.demo_images import make_demo_data


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Write a small set of real demo images (crops of the '
        'photographs bundled with scikit-image and scikit-learn, and '
        'scikit-learn digits); no download.')
    parser.add_argument('--out', default='data/demo_images',
                        help='output folder (default: data/demo_images)')
    parser.add_argument('--num', type=int, default=DEMO_NUM,
                        help=f'number of images (default: {DEMO_NUM}, a '
                        'quarter of them photographs)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--force', action='store_true',
                        help='rewrite even if the folder looks complete')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        make_demo_data(args.out, args.num, args.seed, args.force)
    except (ValueError, ImportError, OSError) as err:
        print(f'make_demo_data.py: error: {err}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
