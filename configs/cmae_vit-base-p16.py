# CMAE, ViT-B/16, ImageNet-1k, 1600 epochs, batch 4096 (32 GPUs x 128).
# Data: mmpretrain's ImageNet layout, data/imagenet/train/<wnid>/*.JPEG and
# data/imagenet/meta/train.txt ('<wnid>/<file> <label>' per line).
# Huang et al., "Contrastive Masked Autoencoders are Stronger Vision
# Learners", TPAMI 2023 (arXiv 2207.13532); numbers of docs/methods.md
# section 2 (the paper and the authors' code).
#
# Shorter schedules of the paper: max_epochs = 300 or 800.
# Fewer GPUs: keep 4096 images a step, or scale lr linearly with the batch
# (lr = 1.5e-4 x batch / 256; --auto-scale-lr does it from base_batch_size).
_base_ = [
    '_base_/datasets/imagenet_pixel_shift.py',
    '_base_/schedules/adamw_mae.py',
    '_base_/default_runtime.py',
]

num_gpus = 32
batch_per_gpu = 128
total_batch = num_gpus * batch_per_gpu          # 4096
max_epochs = 1600
warmup_epochs = 40

model = dict(
    type='CMAE',
    momentum=0.996,       # target <- m * target + (1 - m) * online, constant
    temperature=0.07,     # tau of the InfoNCE
    rc_weight=1.0,        # L = rc_weight * L_rec + ct_weight * 2 tau * L_ct
    ct_weight=1.0,
    norm_pix=True,        # MSE on per-patch normalised pixels
    # the target view's MoCo v2 colour ops on the device
    data_preprocessor={{_base_.data_preprocessor}},
    # online encoder: ViT-B/16 with fixed 2-D sin-cos positions; the
    # target encoder is its EMA copy (mean of patch tokens, no final LN)
    backbone=dict(type='MaskedViT', arch='b', img_size=224, patch_size=16,
                  fixed_pos_embed=True, drop_path_rate=0.),
    # 0.65 of the 7 x 7 grid of 2 x 2 token blocks masked:
    # int(49 * 0.35) = 17 blocks = 68 of 196 tokens visible
    mask_generator=dict(type='BlockRandomMask', input_size=14, block_size=2,
                        mask_ratio=0.65),
    pixel_decoder=dict(type='MaskedTokenDecoder', num_patches=196,
                       patch_size=16, embed_dim=768, decoder_embed_dim=512,
                       decoder_depth=8, decoder_num_heads=16),
    feature_decoder=dict(type='MaskedTokenDecoder', num_patches=196,
                         patch_size=16, embed_dim=768, decoder_embed_dim=512,
                         decoder_depth=2, decoder_num_heads=16,
                         predict_feature_dim=768),
    projector=dict(type='MLPBNNeck', in_channels=768, hid_channels=1536,
                   out_channels=256, last_bias=False),
    predictor=dict(type='MLPBNNeck', in_channels=256, hid_channels=1536,
                   out_channels=256, last_bias=False),
    # projector / predictor hidden norm: SyncBN eps 1e-6 as the authors'
    # (BN without CUDA DDP)
    proj_norm_cfg=dict(type='SyncBN', eps=1e-6),
)

# Pixel-shifting views (RandomResizedCrop 256, scale 0.2-1, bicubic, + flip;
# online = top-left 224, no colour; target = 224 shifted by U{0..31} with
# MoCo v2 colour augmentation, on the device):
# _base_/datasets/imagenet_pixel_shift.py.
train_dataloader = dict(batch_size=batch_per_gpu)

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
