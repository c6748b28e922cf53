"""The grids of ``tools/visualization/browse_masks.py``: one row per image,
the original (with each view's crop box when the pipeline keeps geometry),
then every view as the pipeline makes it (masks tinted red, regions framed
green, token masks scaled to the view), then, for methods that mask inside
the model (``model.prepare_views``: the saliency method), the views as the
encoders see them, computed by the config's model at its initial weights
(or a checkpoint's). Tiles are (TILE + 12, TILE, 3) uint8 RGB.
"""
import os
import os.path as osp

import numpy as np

TILE = 128  # pixels per tile side in the grid
MASK_TINT = np.array([255, 0, 0], dtype=np.float32)
REGION_COLOUR = (0, 255, 0)
BOX_COLOURS = [(255, 200, 0), (0, 160, 255), (255, 0, 255), (0, 255, 160)]


# --------------------------------------------------------------------------
# drawing
# --------------------------------------------------------------------------
def to_rgb_uint8(img, bgr: bool) -> np.ndarray:
    """(3, H, W) or (H, W, 3) array/tensor -> (H, W, 3) uint8 RGB."""
    img = np.asarray(img.cpu() if hasattr(img, 'cpu') else img)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = img.transpose(1, 2, 0)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if bgr:
        img = img[..., ::-1]
    if img.dtype != np.uint8:
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / (hi - lo + 1e-8) * 255
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))


def spatial_mask(mask, shape) -> np.ndarray:
    """Any mask ((H, W), (C, H, W), a token grid (h, w)) -> (H, W) bool,
    nearest-scaled to ``shape``."""
    m = np.asarray(mask.cpu() if hasattr(mask, 'cpu') else mask).astype(bool)
    if m.ndim == 3:
        m = m.any(axis=0)
    if m.shape != tuple(shape):
        rows = (np.arange(shape[0]) * m.shape[0] // shape[0])
        cols = (np.arange(shape[1]) * m.shape[1] // shape[1])
        m = m[rows[:, None], cols[None, :]]
    return m


def tint(img: np.ndarray, mask: np.ndarray, alpha: float = 0.5):
    out = img.astype(np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * MASK_TINT
    return out.astype(np.uint8)


def tile(img: np.ndarray, boxes=(), colours=(), title: str = ''):
    """The image resized to TILE x TILE (aspect kept, padded), boxes (in the
    image's pixels) drawn, the title written at the top."""
    from PIL import Image, ImageDraw
    h, w = img.shape[:2]
    s = TILE / max(h, w)
    im = Image.fromarray(img).resize((max(1, round(w * s)),
                                      max(1, round(h * s))), Image.NEAREST)
    canvas = Image.new('RGB', (TILE, TILE + 12), (40, 40, 40))
    canvas.paste(im, (0, 12))
    draw = ImageDraw.Draw(canvas)
    for box, colour in zip(boxes, colours):
        x0, y0, x1, y1 = (float(v) * s for v in box)
        draw.rectangle([x0, y0 + 12, x1, y1 + 12], outline=colour)
    draw.text((2, 0), title[:22], fill=(255, 255, 255))
    return np.asarray(canvas)


# --------------------------------------------------------------------------
# data and model
# --------------------------------------------------------------------------
def build_dataset(cfg, images):
    from mmmask.registry import DATASETS
    ds_cfg = cfg.train_dataloader.dataset.copy()
    if images is not None:
        if not osp.isdir(images):
            raise FileNotFoundError(f'--images: no such folder: {images}')
        pipeline = list(ds_cfg.pipeline)
        if not any('Load' in str(t.get('type', '')) for t in pipeline):
            # datasets held in memory (CIFAR) have no loading step
            pipeline.insert(0, dict(type='LoadImageFromFile'))
        ds_cfg = dict(type='CustomDataset', data_root=images,
                      with_label=False, pipeline=pipeline)
    return DATASETS.build(ds_cfg)


def original_image(dataset, index):
    import mmcv
    info = dataset.get_data_info(index)
    return mmcv.imread(info['img_path'], channel_order='rgb')


def model_views(model, inputs, data_sample):
    """``model.prepare_views`` on one sample: {name: (3, H, W) tensor}
    (normalised, as the encoders see them) and masks."""
    import torch
    data = model.data_preprocessor(
        dict(inputs=[v[None] for v in inputs],
             data_samples=[data_sample]), False)
    views = data['inputs']
    with torch.no_grad():
        out = model.prepare_views(*views[:2])
    return {k: v[0] for k, v in out.items()}


def rows_for(cfg, images=None, show_number=4, checkpoint=None, seed=0):
    """The grid's rows (lists of tiles) of the first ``show_number`` samples
    of the config's train dataset (or of the folder ``images``)."""
    import torch
    from mmengine.registry import DefaultScope

    import mmmask.datasets  # noqa: F401
    import mmmask.models  # noqa: F401
    from mmmask.registry import MODELS
    np.random.seed(seed)
    torch.manual_seed(seed)
    dataset = build_dataset(cfg, images)
    if len(dataset) == 0:
        raise RuntimeError('the dataset is empty: nothing to show')
    # LoadImageFromFile reads BGR and PackInputs keeps it; the model's data
    # preprocessor flips to RGB when its to_rgb is set.
    model_rgb = bool(cfg.model.get('data_preprocessor', {}).get('to_rgb'))
    model = None
    with DefaultScope.overwrite_default_scope('mmmask'):
        candidate = MODELS.build(cfg.model)
    if hasattr(candidate, 'prepare_views'):
        model = candidate
        if checkpoint:
            from mmengine.runner import load_checkpoint

            from mmmask.engine.checkpoint import register_safe_loading
            register_safe_loading()
            load_checkpoint(model, checkpoint, map_location='cpu')
        else:
            from mmmask.utils.quiet import init_weights_quietly
            init_weights_quietly(model)
        model.train()
    rows = []
    for i in range(min(show_number, len(dataset))):
        sample = dataset[i]
        inputs, ds = sample['inputs'], sample['data_samples']
        views = inputs if isinstance(inputs, list) else [inputs]
        geoms = ds.get('view_geometry')
        regions = ds.get('regions')
        orig = original_image(dataset, i)
        boxes = [g.crop_box for g in geoms] if geoms else []
        row = [tile(orig, boxes, BOX_COLOURS, 'original')]
        for v, view in enumerate(views):
            img = to_rgb_uint8(view, bgr=True)
            masks = []
            if geoms and geoms[v].mask is not None:
                masks.append(geoms[v].mask)
            if v == 0 and 'mask' in ds:
                masks.append(ds.mask)
            for m in masks:
                img = tint(img, spatial_mask(m, img.shape[:2]))
            title = f'view {v}'
            if geoms:
                title += ' flip' if geoms[v].flip else ''
            region = ([regions[v]] if regions is not None and
                      v < len(regions) else [])
            row.append(tile(img, region, [REGION_COLOUR], title))
        if model is not None:
            out = model_views(model, views, ds)
            for name, t in out.items():
                if name.endswith('_mask'):
                    continue
                img = to_rgb_uint8(t, bgr=not model_rgb)
                if f'{name}_mask' in out:
                    img = tint(img, spatial_mask(out[f'{name}_mask'],
                                                 img.shape[:2]), alpha=0.35)
                row.append(tile(img, title=f'model {name}'))
        rows.append(row)
    return rows


def save_grid(rows, path):
    from PIL import Image
    width = max(len(r) for r in rows)
    blank = np.zeros_like(rows[0][0])
    grid = np.concatenate([np.concatenate(r + [blank] * (width - len(r)),
                                          axis=1) for r in rows], axis=0)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    Image.fromarray(grid).save(path)
    return grid.shape
