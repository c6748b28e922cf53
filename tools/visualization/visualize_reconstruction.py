"""Show what a masked-image model reconstructs (CMAE, MACRL): one PNG of
four panels, input, masked input, reconstruction, reconstruction with the
visible patches pasted back (``mmmask/visualization/reconstruction.py``).

    python tools/visualization/visualize_reconstruction.py CONFIG CHECKPOINT \
        IMAGE [--out PNG] [--seed 0] [--branch strong|weak]
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
from PIL import Image

REPO_ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if osp.isdir(osp.join(REPO_ROOT, 'mmmask')) and REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)

from mmmask.visualization.reconstruction import (  # noqa: E402
    build_model, reconstruction_panels)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('image')
    p.add_argument('--out', default='reconstruction.png')
    p.add_argument('--seed', type=int, default=0, help='mask seed')
    p.add_argument('--branch', default='strong', choices=['strong', 'weak'],
                   help='MACRL: which branch (mask ratio and decoder)')
    p.add_argument('--panel-size', type=int, default=224,
                   help='side of each panel in the PNG (pixels)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    model = build_model(args.config, args.checkpoint)
    panels, mask = reconstruction_panels(model, args.image, args.seed,
                                         args.branch)
    n = args.panel_size
    panels = [np.asarray(Image.fromarray(im).resize((n, n), Image.NEAREST))
              for im in panels]
    gap = np.full((n, 4, 3), 255, np.uint8)
    row = np.concatenate(sum([[im, gap] for im in panels], [])[:-1], axis=1)
    os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
    Image.fromarray(row).save(args.out)
    print(f'masked {int(mask.sum())} of {mask.numel()} patches; '
          f'wrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
