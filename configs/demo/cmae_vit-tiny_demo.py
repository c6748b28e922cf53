# CMAE on the CPU in minutes: a 2-layer, 64-wide ViT with 4 px patches on
# 32 px views of the built-in demo images (python tools/make_demo_data.py).
# Same method as configs/cmae_vit-base-p16.py, scaled down: 8 x 8 tokens,
# the mask 0.65 over 2 x 2 blocks (16 blocks, int(16 * 0.35) = 5 visible =
# 20 of 64 tokens), pixel shift up to 4 px of a 36 px crop.
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/demo_images/'
crop_size = 32
max_shift = 4
patch_size = 4
grid = crop_size // patch_size
embed_dims = 64

# Split pipeline (configs/cmae_vit-base-p16.py): crop, shift and flip on
# the CPU, the target view's colour ops batched on the device.
data_preprocessor = dict(
    type='ViewAugmentDataPreprocessor', mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], to_rgb=True, input_order='bgr',
    view_augments=[
        [],  # online view: no colour
        [dict(type='BatchColorJitter', brightness=0.4, contrast=0.4,
              saturation=0.4, hue=0.1, prob=0.8),
         dict(type='BatchRandomGrayscale', prob=0.2,
              channel_weights=(0.114, 0.587, 0.2989)),
         dict(type='BatchGaussianBlur', sigma_range=(0.1, 2.0), prob=0.5)]])

model = dict(
    type='CMAE',
    momentum=0.996,
    temperature=0.07,
    rc_weight=1.0,
    ct_weight=1.0,
    norm_pix=True,
    data_preprocessor=data_preprocessor,
    backbone=dict(type='MaskedViT',
                  arch=dict(embed_dims=embed_dims, num_layers=2, num_heads=4,
                            feedforward_channels=4 * embed_dims),
                  img_size=crop_size, patch_size=patch_size),
    mask_generator=dict(type='BlockRandomMask', input_size=grid,
                        block_size=2, mask_ratio=0.65),
    pixel_decoder=dict(type='MaskedTokenDecoder', num_patches=grid * grid,
                       patch_size=patch_size, embed_dim=embed_dims,
                       decoder_embed_dim=64, decoder_depth=1,
                       decoder_num_heads=4),
    feature_decoder=dict(type='MaskedTokenDecoder', num_patches=grid * grid,
                         patch_size=patch_size, embed_dim=embed_dims,
                         decoder_embed_dim=64, decoder_depth=1,
                         decoder_num_heads=4, predict_feature_dim=embed_dims),
    projector=dict(type='MLPBNNeck', in_channels=embed_dims,
                   hid_channels=128, out_channels=32),
    predictor=dict(type='MLPBNNeck', in_channels=32, hid_channels=128,
                   out_channels=32),
)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PixelShiftViews', crop_size=crop_size, max_shift=max_shift,
         base_transforms=[
             dict(type='RandomResizedCrop', scale=crop_size + max_shift,
                  crop_ratio_range=(0.2, 1.), interpolation='bicubic',
                  backend='cv2'),
             dict(type='RandomFlip', prob=0.5)],
         target_transforms=[]),  # colour: on the device
    dict(type='PackInputs', algorithm_keys=['pixel_shift']),
]
train_dataloader = dict(
    batch_size=16, num_workers=2, drop_last=True, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CustomDataset', data_root=data_root, with_label=False,
                 pipeline=train_pipeline))

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1.5e-4 * 16 / 256 * 10,
                   betas=(0.9, 0.95), weight_decay=0.05),
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
