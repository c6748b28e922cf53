"""Show what a masked-image model reconstructs (CMAE, MACRL).

    python tools/visualization/visualize_reconstruction.py CONFIG CHECKPOINT \
        IMAGE [--out PNG] [--seed 0] [--branch strong|weak]

Writes one PNG with four panels: the input (resized and centre-cropped to
the model's size), the masked input (masked patches grey), the
reconstruction, and the reconstruction with the visible patches pasted
back. The mask comes from the model's own mask generator (MACRL:
``--branch``'s). Predictions of per-patch normalised pixels (``norm_pix``)
are mapped back with each patch's mean and standard deviation in the
input, as in MAE's visualisation.
"""
import argparse
import os
import os.path as osp
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(
    __file__)))))


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


def build_model(config, checkpoint):
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import mmmask.models  # noqa: F401
    from mmmask.engine.checkpoint import load_checkpoint_file
    from mmmask.registry import MODELS
    from mmmask.engine.checkpoint.transfer import checkpoint_state_dict
    cfg = Config.fromfile(config)
    with DefaultScope.overwrite_default_scope('mmmask'):
        model = MODELS.build(cfg.model)
    state = checkpoint_state_dict(load_checkpoint_file(checkpoint))
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_image(path, size):
    """RGB uint8 (size, size, 3): short side to ``size``, centre crop."""
    img = Image.open(path).convert('RGB')
    w, h = img.size
    s = size / min(w, h)
    img = img.resize((max(size, round(w * s)), max(size, round(h * s))),
                     Image.BICUBIC)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


def main(argv=None):
    args = parse_args(argv)
    from mmmask.models.losses import patch_stats, patchify, unpatchify
    model = build_model(args.config, args.checkpoint)
    vit = model.backbone
    size, p = vit.img_size[0], model.patch_size
    grid = vit.patch_resolution
    rgb = load_image(args.image, size)
    pre = model.data_preprocessor
    mean = pre.mean.view(1, 3, 1, 1).float()
    std = pre.std.view(1, 3, 1, 1).float()
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float()
    x = (x - mean) / std  # (1, 3, H, W), what the model sees

    if hasattr(model, 'mask_generators'):
        gen = model.mask_generators[args.branch]
        recon_kw = dict(branch=args.branch)
    else:
        gen = model.mask_generator
        recon_kw = {}
    mask = gen.batch(1, rng=args.seed)  # (1, h, w)
    pred = model.reconstruct(x, mask, **recon_kw)  # (1, L, p*p*3)
    patches = patchify(x, p)  # (1, L, p*p*3)
    if getattr(model, 'norm_pix', False):
        mu, sd = patch_stats(patches)  # undo the targets' normalisation
        pred = pred * sd + mu
    m = mask.reshape(1, -1, 1).float()
    recon = unpatchify(pred, p, grid)
    pasted = unpatchify(pred * m + patches * (1 - m), p, grid)
    masked = unpatchify(patches * (1 - m), p, grid)
    grey = unpatchify(m.expand_as(patches), p, grid).bool()

    def to_uint8(t, fill=None):
        img = (t * std + mean)[0]
        if fill is not None:
            img = torch.where(fill[0], torch.full_like(img, 127.), img)
        return img.clamp(0, 255).round().byte().permute(1, 2, 0).numpy()

    panels = [rgb, to_uint8(masked, grey), to_uint8(recon), to_uint8(pasted)]
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
