# MACRL, ViT-S/16, an ImageNet subset (ImageNet-100 by default), 224 px,
# 400 epochs, batch 512 (8 GPUs x 64). The subset is a file list in
# mmpretrain's format (``<class>/<image> <label>`` per line, relative to
# train/), data/imagenet/meta/imagenet100_train.txt; the images stay in
# data/imagenet/train/<wnid>/*.JPEG. The list of CMC's ImageNet-100:
#   python tools/dataset_converters/make_imagenet100.py data/imagenet
#       --list-only
# Another subset: change ann_file. Model: mmmask's default MACRL design
# (docs/methods.md section 5) at ViT-S/16, 14 x 14 tokens.
_base_ = 'macrl_vit-s-p4_cifar10.py'

img_size = 224
grid = 14
max_epochs = 400

model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
        to_rgb=True, input_order='bgr',  # mmcv loads BGR
        view_augments=[
            # strong view
            [dict(type='BatchColorJitter', brightness=0.4, contrast=0.4,
                  saturation=0.4, hue=0.1, prob=0.8),
             dict(type='BatchRandomGrayscale', prob=0.2,
                  channel_weights=(0.114, 0.587, 0.2989)),
             dict(type='BatchGaussianBlur', sigma_range=(0.1, 2.0),
                  prob=0.5),
             dict(type='BatchRandomFlip', prob=0.5)],
            [dict(type='BatchRandomFlip', prob=0.5)],  # weak view
        ]),
    queue_len=16384,
    backbone=dict(img_size=img_size, patch_size=16),
    strong_mask=dict(input_size=grid),
    weak_mask=dict(input_size=grid),
    decoder=dict(num_patches=grid * grid, patch_size=16))

# Split pipeline: the data workers crop; the strong view's colour ops and
# both views' flips run batched on the device (model.data_preprocessor
# view_augments, one list per view). Per-image pipeline: view_augments=[]
# and the transforms in these view pipelines (docs/pipeline.md).
strong_view = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.),
         backend='cv2')]
weak_view = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.),
         backend='cv2')]
train_dataloader = dict(dataset=dict(
    _delete_=True, type='ImageNet', data_root='data/imagenet/',
    data_prefix='train', ann_file='meta/imagenet100_train.txt',
    pipeline=[dict(type='LoadImageFromFile'),
              dict(type='MultiView', num_views=[1, 1],
                   transforms=[strong_view, weak_view]),
              dict(type='PackInputs')]))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=40, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 40, by_epoch=True,
         begin=40, end=max_epochs, eta_min=0., convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
