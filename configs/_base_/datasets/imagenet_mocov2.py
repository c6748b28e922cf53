# ImageNet in mmpretrain's folder layout (data/imagenet/train/<class>/*.JPEG,
# data/imagenet/meta/train.txt), two MoCo v2 views per image.
#
# Split pipeline (default): the data workers decode and crop; the colour
# jitter, grayscale, blur and flip run batched on the model's device
# (ViewAugmentDataPreprocessor, docs/pipeline.md). The per-image pipeline
# (all transforms on the CPU, as mmpretrain): use
# '_base_/datasets/imagenet_mocov2_per_image.py' in place of this file.
_base_ = ['./mocov2_views.py']
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'

data_preprocessor = dict(
    type='ViewAugmentDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True,
    input_order='bgr',  # mmcv loads BGR
    view_augments={{_base_.view_augments}})

# CPU side: one fused transform reads the file, draws both views' crops
# (mmpretrain's RandomResizedCrop draw), decodes once (at a reduced JPEG scale
# only when every crop keeps its output resolution) and resizes each crop
# (PIL's antialiased filter), recording each view's geometry.
view_pipeline = [{{_base_.view_crop}}]
train_pipeline = [
    dict(type='DecodeMultiViewCrops', num_views=2, crop={{_base_.view_crop}}),
    dict(type='PackInputs'),
]

train_dataloader = dict(
    batch_size=32,  # per GPU: 8 x 32 = 256
    num_workers=8,
    drop_last=True,
    persistent_workers=True,
    pin_memory=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type=dataset_type, data_root=data_root, split='train',
                 pipeline=train_pipeline))
