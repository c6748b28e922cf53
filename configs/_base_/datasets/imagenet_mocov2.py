# ImageNet in mmpretrain's folder layout (data/imagenet/train/<class>/*.JPEG,
# data/imagenet/meta/train.txt), two MoCo v2 views per image.
dataset_type = 'ImageNet'
data_root = 'data/imagenet/'

data_preprocessor = dict(
    type='SelfSupDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

# MoCo v2 augmentation (Chen et al. 2020, Sec. 3): RandomResizedCrop 224
# scale (0.2, 1), ColorJitter(0.4, 0.4, 0.4, 0.1) p=0.8, grayscale p=0.2,
# Gaussian blur sigma in [0.1, 2] p=0.5, horizontal flip.
crop_size = 224
view_pipeline = [
    dict(type='RandomResizedCrop', scale=crop_size, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    dict(type='RandomApply',
         transforms=[dict(type='ColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf',
         prob=0.5),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=2, transforms=[view_pipeline]),
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
