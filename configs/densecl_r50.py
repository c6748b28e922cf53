# DenseCL, ResNet-50, ImageNet, 200 epochs, 8 GPUs x 32 images.
# Data: mmpretrain's ImageNet layout, data/imagenet/train/<wnid>/*.JPEG and
# data/imagenet/meta/train.txt ('<wnid>/<file> <label>' per line).
# Wang et al., "Dense Contrastive Learning for Self-Supervised Visual
# Pre-Training", CVPR 2021.
_base_ = [
    '_base_/datasets/imagenet_mocov2.py',
    '_base_/schedules/sgd_coslr_200e.py',
    '_base_/default_runtime.py',
]

model = dict(
    type='DenseCL',
    queue_len=65536,      # K of both queues
    feat_dim=128,
    momentum=0.999,       # m: key <- m * key + (1 - m) * query
    loss_lambda=0.5,      # L = (1 - lambda) L_global + lambda L_dense
    key_bn='shuffle',     # 'shuffle' | 'sync' | 'none'
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=50, out_indices=(3, ),
                  norm_cfg=dict(type='BN'), zero_init_residual=False),
    neck=dict(type='DenseProjectionNeck', in_channels=2048, hid_channels=2048,
              out_channels=128,
              num_grid=None),  # S: None = native 7 x 7 C5 grid
    head=dict(type='InfoNCEHead', temperature=0.2),  # tau
)

# Optional lambda warm-up (lambda = 0 for the first iterations; the authors
# suggest 10000 when used). Off by default, as in the paper's main results:
# custom_hooks = [dict(type='SafeCheckpointHook', priority='VERY_HIGH'),
#                 dict(type='LossWeightWarmupHook', warmup_iters=10000)]
