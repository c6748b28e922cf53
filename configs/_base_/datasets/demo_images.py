# The small built-in set of real images that tools/make_demo_data.py writes
# (crops of scikit-image's and scikit-learn's bundled photographs and
# upsampled digits) into data/demo_images/, two MoCo v2-style views at 64 px.
#
# Split pipeline (default): the data workers decode and crop, the colour
# jitter, grayscale, blur and flip run batched on the model's device
# (ViewAugmentDataPreprocessor, docs/pipeline.md). Per-image pipeline: use
# '_base_/datasets/demo_images_per_image.py' in place of this file.
_base_ = ['./mocov2_views.py']
data_root = 'data/demo_images/'

data_preprocessor = dict(
    type='ViewAugmentDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
    input_order='bgr',  # mmcv loads BGR
    view_augments={{_base_.view_augments}})

crop_size = 64
# CPU side of one view: the crop only (mocov2_views.py's view_crop at 64 px)
view_pipeline = [
    dict(type='RandomResizedCrop', scale=crop_size, crop_ratio_range=(0.2, 1.),
         backend='cv2'),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, with_label=False,
                 pipeline=train_pipeline))
