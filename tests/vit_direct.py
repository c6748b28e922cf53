"""Direct (loop-by-loop) computations of the ViT methods' pieces, written
independently of mmmask's vectorised code, for
tests/test_models/test_cmae.py and tests/test_models/test_macrl.py. Also the tiny model configs of those tests."""
import copy
import os.path as osp

import torch
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def demo_model_cfg(name, **overrides):
    """The ``model`` of configs/demo/<name>.py with ``overrides`` merged."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'demo', name + '.py'))
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()})
    return copy.deepcopy(cfg.model)


def build(cfg, seed=0):
    import mmmask.models  # noqa: F401
    from mmmask.registry import MODELS
    import logging

    from mmengine.logging import MMLogger
    torch.manual_seed(seed)
    model = MODELS.build(cfg)
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)  # init_weights logs every parameter
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)
    return model


def restart_mask_stream(model):
    """Restart ``model.mask_random`` (outside a runner every draw is a new
    step of the stream); returns a generator equal to the one the model's
    next ``loss()`` draws its masks from."""
    from mmmask.models.utils import StepRandom
    model.mask_random = StepRandom(model.mask_random.stream)
    return StepRandom(model.mask_random.stream).numpy()


def encode_visible(vit, img, mask, final_norm=True):
    """ViT on the visible tokens of each image, one image at a time."""
    outs = []
    p = vit.patch_embed.projection
    for i in range(img.shape[0]):
        tokens = p(img[i:i + 1]).flatten(2).transpose(1, 2)[0]  # (L, C)
        tokens = tokens + vit.pos_embed[0, 1:]
        keep = [j for j in range(tokens.shape[0])
                if mask is None or not bool(mask[i].flatten()[j])]
        x = torch.cat([vit.cls_token[0] + vit.pos_embed[0, :1],
                       tokens[keep]])[None]
        for layer in vit.layers:
            x = layer(x)
        if final_norm:
            x = vit.ln1(x)
        outs.append(x)
    return torch.cat(outs)  # (N, 1 + V, C)


def decode(dec, latent, mask):
    """MAE decoder: visible tokens at their positions, the mask token
    elsewhere, placed one token at a time."""
    x = dec.decoder_embed(latent)  # (N, 1 + V, D)
    n, length = mask.shape[0], mask[0].numel()
    rows = []
    for i in range(n):
        seq, v = [x[i, 0]], 1
        for j in range(length):
            if bool(mask[i].flatten()[j]):
                seq.append(dec.mask_token[0, 0])
            else:
                seq.append(x[i, v])
                v += 1
        rows.append(torch.stack(seq))
    y = torch.stack(rows) + dec.decoder_pos_embed
    for blk in dec.decoder_blocks:
        y = blk(y)
    return dec.decoder_pred(dec.decoder_norm(y))[:, 1:]  # (N, L, out)


def patch_targets(img, p, norm=True):
    """Per-patch pixels (row, col, channel order), normalised per patch."""
    n, _, h, w = img.shape
    rows = []
    for r in range(h // p):
        for c in range(w // p):
            patch = img[:, :, r * p:(r + 1) * p, c * p:(c + 1) * p]
            rows.append(patch.permute(0, 2, 3, 1).reshape(n, -1))
    t = torch.stack(rows, dim=1)  # (N, L, p*p*3)
    if norm:
        t = (t - t.mean(-1, keepdim=True)) / (t.var(-1, keepdim=True)
                                              + 1e-6).sqrt()
    return t


def masked_error(pred, target, mask, kind):
    """Average over the masked patches of each patch's mean error."""
    total, count = 0.0, 0
    for i in range(pred.shape[0]):
        for j in range(pred.shape[1]):
            if bool(mask[i].flatten()[j]):
                d = pred[i, j] - target[i, j]
                total = total + (d.pow(2) if kind == 'mse' else d.abs()).mean()
                count += 1
    return total / count


def info_nce_rows(q, keys, positives_idx, tau, negatives=None):
    """-log softmax over [q.k_pos, q.keys / negatives] row by row."""
    losses = []
    for i in range(q.shape[0]):
        qi = F.normalize(q[i], dim=0)
        if negatives is None:  # in-batch: keys holds positives and negatives
            logits = torch.stack([qi @ F.normalize(k, dim=0) for k in keys])
            losses.append(-torch.log_softmax(logits / tau, 0)[
                positives_idx[i]])
        else:
            pos = qi @ F.normalize(keys[i], dim=0)
            logits = torch.cat([pos[None], negatives @ qi]) / tau
            losses.append(-torch.log_softmax(logits, 0)[0])
    return torch.stack(losses).mean()
