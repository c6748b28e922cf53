# MACRL on the CPU in minutes: a 2-layer, 64-wide ViT with 4 px patches on
# 32 px views of the built-in demo images (python tools/make_demo_data.py).
# Same method as configs/macrl_vit-s-p4_cifar10.py, scaled down.
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/demo_images/'
img_size = 32
patch_size = 4
grid = img_size // patch_size
embed_dims = 64

data_preprocessor = dict(
    type='ViewAugmentDataPreprocessor', mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], to_rgb=True,
    input_order='bgr',  # mmcv loads BGR
    view_augments=[
        # strong view
        [dict(type='BatchColorJitter', brightness=0.4, contrast=0.4,
              saturation=0.4, hue=0.1, prob=0.8),
         dict(type='BatchRandomGrayscale', prob=0.2,
              channel_weights=(0.114, 0.587, 0.2989)),
         dict(type='BatchRandomFlip', prob=0.5)],
        [dict(type='BatchRandomFlip', prob=0.5)],  # weak view
    ])

model = dict(
    type='MACRL',
    queue_len=256,
    feat_dim=32,
    temperature=0.2,
    lambda_rec=1.0,
    rec_loss='l1',
    norm_pix=True,
    share_decoder=False,
    detach_positive=False,
    momentum=0.99,
    data_preprocessor=data_preprocessor,
    backbone=dict(type='MaskedViT',
                  arch=dict(embed_dims=embed_dims, num_layers=2, num_heads=4,
                            feedforward_channels=4 * embed_dims),
                  img_size=img_size, patch_size=patch_size),
    strong_mask=dict(type='RandomPatchMask', input_size=grid,
                     mask_ratio=0.75),
    weak_mask=dict(type='RandomPatchMask', input_size=grid, mask_ratio=0.5),
    decoder=dict(type='MaskedTokenDecoder', num_patches=grid * grid,
                 patch_size=patch_size, embed_dim=embed_dims,
                 decoder_embed_dim=64, decoder_depth=1, decoder_num_heads=4),
    projector=dict(type='MLPBNNeck', in_channels=embed_dims,
                   hid_channels=128, out_channels=32, last_bias=True))

# strong view: MoCo v2 augmentation; weak view: crop and flip only (MAE's)
# Split pipeline: the data workers crop; the strong view's colour ops and
# both views' flips run batched on the device (model.data_preprocessor
# view_augments, one list per view). Per-image pipeline: view_augments=[]
# and the transforms in these view pipelines (docs/pipeline.md).
strong_view = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='cv2')]
weak_view = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='cv2')]
train_dataloader = dict(
    batch_size=16, num_workers=2, drop_last=True, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, with_label=False,
                 pipeline=[dict(type='LoadImageFromFile'),
                           dict(type='MultiView', num_views=[1, 1],
                                transforms=[strong_view, weak_view]),
                           dict(type='PackInputs')]))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.),
                     'cls_token': dict(decay_mult=0.),
                     'mask_token': dict(decay_mult=0.)}))
max_iters = 200
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=False, begin=0,
         end=20),
    dict(type='CosineAnnealingLR', T_max=max_iters - 20, by_epoch=False,
         begin=20, end=max_iters, eta_min=0.)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100,
                    max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
