# demo_images.py with the per-image pipeline: every view transform in the
# data workers (mmpretrain / mmcv, as before the split pipeline); the data
# preprocessor only normalises.
_base_ = ['./demo_images.py']

data_preprocessor = dict(
    _delete_=True,
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

view_pipeline = [
    dict(type='RandomResizedCrop', scale=64, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    {{_base_.view_jitter_per_image}},
    {{_base_.view_gray_per_image}},
    {{_base_.view_blur_per_image}},
    {{_base_.view_flip_per_image}},
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
