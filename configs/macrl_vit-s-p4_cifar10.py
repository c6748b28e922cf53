# MACRL, ViT-S with 4 px patches, CIFAR-10 (mmpretrain's layout:
# data/cifar10/cifar-10-batches-py/), 800 epochs, batch 512 (8 GPUs x 64).
# Yao et al., "Masked Contrastive Representation Learning",
# arXiv 2211.06012. The paper has no public code: the model is mmmask's
# documented default design (docs/methods.md section 5; every open choice is
# an argument of the model below); the recipe (MAE's AdamW recipe at this
# batch) is mmmask's choice too.
_base_ = ['_base_/schedules/adamw_mae.py', '_base_/default_runtime.py']

num_gpus = 8
batch_per_gpu = 64
total_batch = num_gpus * batch_per_gpu
max_epochs = 800
warmup_epochs = 40

# ViT-S (384 wide, 12 layers, 6 heads) with 4 px patches (8 x 8 tokens), a
# light 2-block 256-wide decoder per branch.
img_size = 32
patch_size = 4
grid = img_size // patch_size
embed_dims = 384

# Asymmetric corruption: the strong branch (mask 0.75) sees MoCo v2's
# augmentation, the weak branch (mask 0.5) crop and flip only. Split
# pipeline: the strong view's colour ops and both views' flips run batched
# on the device (view_augments, one list per view; [] = normalisation only,
# docs/pipeline.md).
data_preprocessor = dict(
    type='ViewAugmentDataPreprocessor', mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255], to_rgb=False,
    input_order='rgb',  # CIFAR arrays are RGB
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
    queue_len=4096,          # K of each branch's queue
    feat_dim=128,
    temperature=0.2,         # tau
    lambda_rec=1.0,          # L = L_con + lambda_rec * L_rec
    rec_loss='l1',           # L1 on per-patch normalised pixels
    norm_pix=True,
    share_decoder=False,     # one light decoder per branch
    detach_positive=False,   # (online keys only) gradients through both
    momentum=0.99,           # EMA key encoder for positives and the queue
    data_preprocessor=data_preprocessor,
    backbone=dict(type='MaskedViT',
                  arch=dict(embed_dims=embed_dims, num_layers=12,
                            num_heads=6, feedforward_channels=4 * embed_dims),
                  img_size=img_size, patch_size=patch_size),
    strong_mask=dict(type='RandomPatchMask', input_size=grid,
                     mask_ratio=0.75),
    weak_mask=dict(type='RandomPatchMask', input_size=grid, mask_ratio=0.5),
    decoder=dict(type='MaskedTokenDecoder', num_patches=grid * grid,
                 patch_size=patch_size, embed_dim=embed_dims,
                 decoder_embed_dim=256, decoder_depth=2,
                 decoder_num_heads=8),
    projector=dict(type='MLPBNNeck', in_channels=embed_dims,
                   hid_channels=2048, out_channels=128, last_bias=True),
)

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
train_pipeline = [
    dict(type='MultiView', num_views=[1, 1],
         transforms=[strong_view, weak_view]),  # [strong, weak]
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=batch_per_gpu, num_workers=4, drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CIFAR10', data_root='data/cifar10', split='train',
                 pipeline=train_pipeline))

# lr 1.5e-4 x batch / 256; AdamW (0.9, 0.95), wd 0.05 except norms, biases,
# pos_embed and tokens, AMP: _base_/schedules/adamw_mae.py
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * total_batch / 256))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, eta_min=0.,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=50,
                                     max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=total_batch)
randomness = dict(seed=0, diff_rank_seed=True)
