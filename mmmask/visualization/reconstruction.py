"""What a masked-image model (CMAE, MACRL) reconstructs, as the panels of
``tools/visualization/visualize_reconstruction.py``: the input (resized and
centre-cropped to the model's size), the masked input (masked patches
grey), the reconstruction, and the reconstruction with the visible patches
pasted back. The mask comes from the model's own mask generator (MACRL: the
branch's). Predictions of per-patch normalised pixels (``norm_pix``) are
mapped back with each patch's mean and standard deviation in the input, as
in MAE's visualisation.
"""
import numpy as np
import torch
from PIL import Image


def build_model(config, checkpoint):
    """The config's model with the checkpoint's weights (strict), in eval
    mode."""
    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    import mmmask.models  # noqa: F401
    from mmmask.engine.checkpoint import load_checkpoint_file
    from mmmask.engine.checkpoint.transfer import checkpoint_state_dict
    from mmmask.registry import MODELS
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


def reconstruction_panels(model, image, seed=0, branch='strong'):
    """``(panels, mask)``: the four (S, S, 3) uint8 RGB panels of ``image``
    (a path) at the model's input size S, and the (1, h, w) token mask."""
    from mmmask.models.losses import patch_stats, patchify, unpatchify
    vit = model.backbone
    size, p = vit.img_size[0], model.patch_size
    grid = vit.patch_resolution
    rgb = load_image(image, size)
    pre = model.data_preprocessor
    mean = pre.mean.view(1, 3, 1, 1).float()
    std = pre.std.view(1, 3, 1, 1).float()
    x = torch.from_numpy(rgb.copy()).permute(2, 0, 1)[None].float()
    x = (x - mean) / std  # (1, 3, H, W), what the model sees

    if hasattr(model, 'mask_generators'):
        gen = model.mask_generators[branch]
        recon_kw = dict(branch=branch)
    else:
        gen = model.mask_generator
        recon_kw = {}
    mask = gen.batch(1, rng=seed)  # (1, h, w)
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
    return panels, mask
