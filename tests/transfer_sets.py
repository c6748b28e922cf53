"""The tiny detection and segmentation sets and configs of the transfer
tests (tests/test_apis/test_transfer_mmdet.py, test_transfer_mmseg.py,
test_transfer_masked.py, test_transfer_vit.py, tests/test_cuda.py): real
photographs with drawn boxes / masks, in the layouts the benchmark configs'
datasets expect, and the launcher runs with the probe hook
(tests/utils/transfer_probe.py)."""
import json
import math
import os
import os.path as osp

from helpers import (IMAGE_SIZE, PHOTOS, ROOT, real_photos, run_probed,
                     write_tiny_config)

DET_TRAIN = osp.join(ROOT, 'tools', 'benchmarks', 'mmdetection', 'train.py')
DET_CONFIGS = osp.join(ROOT, 'configs', 'benchmarks', 'mmdetection')
CLASSES = ('person', 'cat', 'cup', 'rocket')


# --------------------------------------------------------------------------
# the tiny COCO-format detection set
# --------------------------------------------------------------------------
def _polygon(box):
    """An octagon inscribed in ``box`` (a drawn instance mask)."""
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, \
        (y1 - y0) / 2
    pts = []
    for i in range(8):
        a = 2 * math.pi * i / 8
        pts += [cx + rx * math.cos(a), cy + ry * math.sin(a)]
    return [round(p, 1) for p in pts]


def make_coco_set(root):
    """A tiny COCO-format detection set in the folder ``root`` (a Path):
    the bundled photographs with hand-placed boxes and octagon masks."""
    from PIL import Image
    os.makedirs(root / 'images')
    w, h = IMAGE_SIZE
    images, annotations = [], []
    for i, (name, img) in enumerate(real_photos().items(), start=1):
        Image.fromarray(img).save(root / 'images' / f'{name}.jpg')
        images.append(dict(id=i, file_name=f'{name}.jpg', width=w, height=h))
        cls, (fx0, fy0, fx1, fy1) = PHOTOS[name]
        box = (fx0 * w, fy0 * h, fx1 * w, fy1 * h)
        annotations.append(dict(
            id=i, image_id=i, category_id=CLASSES.index(cls) + 1,
            bbox=[box[0], box[1], box[2] - box[0], box[3] - box[1]],
            area=(box[2] - box[0]) * (box[3] - box[1]), iscrowd=0,
            segmentation=[_polygon(box)]))
    categories = [dict(id=i + 1, name=c) for i, c in enumerate(CLASSES)]
    with open(root / 'train.json', 'w') as f:
        json.dump(dict(images=images, annotations=annotations,
                       categories=categories), f)
    return str(root)


def _detector_overrides(name):
    """Model overrides of the test (fewer proposals and sampled RoIs: the
    stock 2000 / 512 make the res5 RoI head slow on the CPU), whether the
    config has masks and whether its loop is iteration-based."""
    rcnn = ('train_cfg=dict(rpn_proposal=dict(nms_pre=100, max_per_img=16),'
            ' rcnn=dict(sampler=dict(num=8)))')
    if name.startswith('faster-rcnn_r50-c4'):
        return f'roi_head=dict(), {rcnn}', False, True
    if name.startswith('mask-rcnn'):
        return rcnn, True, False
    return '', False, False


def write_tiny_det_config(path, bench, coco_root, probe_out, ckpt):
    name = osp.basename(bench)
    model, with_mask, by_iter = _detector_overrides(name)
    loop = ("dict(max_iters=2, val_interval=1000)" if by_iter else
            "dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=1, "
            "val_interval=1000)")
    sampler = ("dict(type='InfiniteSampler', shuffle=True)" if by_iter else
               "dict(type='DefaultSampler', shuffle=True)")
    write_tiny_config(path, bench, ckpt, probe_out, f"""\
        model = dict({model})
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True,
                 with_mask={with_mask}),
            dict(type='Resize', scale={IMAGE_SIZE}, keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackDetInputs')]
        train_dataloader = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            sampler={sampler},
            dataset=dict(_delete_=True, type='CocoDataset',
                         data_root={coco_root!r},
                         ann_file='train.json',
                         data_prefix=dict(img='images/'),
                         metainfo=dict(classes={CLASSES!r}),
                         filter_cfg=dict(filter_empty_gt=True),
                         pipeline=pipeline))
        train_cfg = {loop}
        """)


def run_detector(config, ckpt, coco_root, tmp_path):
    """The benchmark ``config`` on the tiny COCO-style set, from ``ckpt``
    (see ``helpers.run_probed``)."""
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_det_config(tiny, osp.join(DET_CONFIGS, config), coco_root,
                          str(tmp_path / 'probe.json'), ckpt)
    return run_probed(DET_TRAIN, tiny, ckpt, tmp_path)



SEG_TRAIN = osp.join(ROOT, 'tools', 'benchmarks', 'mmsegmentation',
                     'train.py')
SEG_CONFIGS = osp.join(ROOT, 'configs', 'benchmarks', 'mmsegmentation')

# config -> dataset type, (image dir, mask dir), (image suffix, mask suffix),
# extra dataset keys, label offset of the drawn objects
LAYOUTS = {
    'fcn_r50-d8_4xb4-20k_voc12aug-512x512.py': (
        'PascalVOCDataset', ('JPEGImages', 'SegmentationClass'),
        ('.jpg', '.png'), "ann_file='train.txt'", 1),
    'fcn_r50-d8_4xb2-40k_cityscapes-769x769.py': (
        'CityscapesDataset', ('leftImg8bit/train', 'gtFine/train'),
        ('_leftImg8bit.png', '_gtFine_labelTrainIds.png'), '', 11),
    'upernet_r50_4xb4-160k_ade20k-512x512.py': (
        'ADE20KDataset', ('images/training', 'annotations/training'),
        ('.jpg', '.png'), 'reduce_zero_label=True', 1),
}


def _draw_mask(shape, box, label):
    """Background 0, an ellipse of ``label`` inside ``box`` (fractions)."""
    from PIL import Image, ImageDraw
    h, w = shape
    mask = Image.new('L', (w, h), 0)
    x0, y0, x1, y1 = box
    ImageDraw.Draw(mask).ellipse([x0 * w, y0 * h, x1 * w, y1 * h],
                                 fill=label)
    return mask


def make_seg_set(root, config):
    from PIL import Image
    _, (img_dir, seg_dir), (img_sfx, seg_sfx), _, offset = LAYOUTS[config]
    os.makedirs(osp.join(root, img_dir))
    os.makedirs(osp.join(root, seg_dir))
    names = []
    for i, (name, img) in enumerate(real_photos().items()):
        Image.fromarray(img).save(osp.join(root, img_dir, name + img_sfx))
        _draw_mask(img.shape[:2], PHOTOS[name][1], offset + i).save(
            osp.join(root, seg_dir, name + seg_sfx))
        names.append(name)
    with open(osp.join(root, 'train.txt'), 'w') as f:
        f.write('\n'.join(names) + '\n')


def write_tiny_seg_config(path, bench, data_root, probe_out, ckpt):
    config = osp.basename(bench)
    dataset, (img_dir, seg_dir), (img_sfx, seg_sfx), extra, _ = \
        LAYOUTS[config]
    suffixes = (f"img_suffix={img_sfx!r}, seg_map_suffix={seg_sfx!r}, "
                if dataset == 'CityscapesDataset' else '')
    reduce = 'reduce_zero_label=True' if 'ADE' in dataset else ''
    write_tiny_config(path, bench, ckpt, probe_out, f"""\
        crop_size = (64, 64)
        model = dict(data_preprocessor=dict(size=crop_size))
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', {reduce}),
            dict(type='RandomCrop', crop_size=crop_size),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackSegInputs')]
        train_dataloader = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            dataset=dict(_delete_=True, type={dataset!r},
                         data_root={data_root!r}, {suffixes}
                         data_prefix=dict(img_path={img_dir!r},
                                          seg_map_path={seg_dir!r}),
                         {extra + ',' if extra else ''}
                         pipeline=pipeline))
        train_cfg = dict(max_iters=2, val_interval=1000)
        """)


def run_segmentor(config, ckpt, tmp_path):
    """The benchmark ``config`` on the tiny drawn-mask set, from ``ckpt``
    (see ``helpers.run_probed``)."""
    data_root = str(tmp_path / 'data')
    make_seg_set(data_root, config)
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_seg_config(tiny, osp.join(SEG_CONFIGS, config), data_root,
                          str(tmp_path / 'probe.json'), ckpt)
    return run_probed(SEG_TRAIN, tiny, ckpt, tmp_path)
