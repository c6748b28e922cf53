# imagenet_mocov2.py with the per-image pipeline: every view transform
# (crop, colour jitter, grayscale, blur, flip) in the data workers, as in
# mmpretrain; the data preprocessor only normalises. Switch a config to it
# by naming this file in place of '_base_/datasets/imagenet_mocov2.py'.
_base_ = ['./imagenet_mocov2.py']

data_preprocessor = dict(
    _delete_=True,
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

view_pipeline = {{_base_.view_pipeline_per_image}}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
