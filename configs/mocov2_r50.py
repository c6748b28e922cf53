# MoCo v2, ResNet-50, ImageNet, 200 epochs, 8 GPUs x 32 images.
# Data: mmpretrain's ImageNet layout, data/imagenet/train/<wnid>/*.JPEG and
# data/imagenet/meta/train.txt ('<wnid>/<file> <label>' per line).
# Chen et al., "Improved Baselines with Momentum Contrastive Learning", 2020.
_base_ = [
    '_base_/datasets/imagenet_mocov2.py',
    '_base_/schedules/sgd_coslr_200e.py',
    '_base_/default_runtime.py',
]

model = dict(
    type='MoCoV2',
    queue_len=65536,      # K
    feat_dim=128,
    momentum=0.999,       # m: key <- m * key + (1 - m) * query
    key_bn='shuffle',     # 'shuffle' | 'sync' | 'none'
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=50, out_indices=(3, ),
                  norm_cfg=dict(type='BN'), zero_init_residual=False),
    neck=dict(type='MLPProjectionNeck', in_channels=2048, hid_channels=2048,
              out_channels=128),
    head=dict(type='InfoNCEHead', temperature=0.2),  # tau
)
