# MaskCo, ResNet-50, ImageNet, 200 epochs, 8 GPUs x 32 images (MoCo v2
# recipe). Zhao et al., "Self-Supervised Visual Representations Learning by
# Contrastive Mask Prediction", ICCV 2021 (arXiv 2108.07954).
# No public code: every open choice below is mmmask's documented default
# (METHODS.md section 4).
_base_ = [
    '_base_/datasets/imagenet_maskco.py',
    '_base_/schedules/sgd_coslr_200e.py',
    '_base_/default_runtime.py',
]

model = dict(
    type='MaskCo',
    queue_len=65536,      # K: region keys from all ranks
    feat_dim=128,
    momentum=0.999,       # m
    key_bn='shuffle',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=50, out_indices=(3, ),
                  norm_cfg=dict(type='BN'), zero_init_residual=False),
    # Mask prediction head on the query C5 map: 2 x Conv3x3-BN-ReLU, residual.
    mask_head=dict(type='MaskPredictionHead', in_channels=2048, num_convs=2,
                   residual=True),
    # The masked region is filled with the dataset mean (0 after
    # normalisation).
    mask_fill=dict(type='MeanFill', mode='dataset'),
    roi_size=7,           # RoIAlign 7 x 7 on both views
    roi_sampling_ratio=2,
    # Same-image negatives: set SampleOverlapRegion's num_neg_regions (in the
    # dataset base) to K > 0 and this to True.
    use_same_image_negatives=False,
    neck=dict(type='MLPProjectionNeck', in_channels=2048, hid_channels=2048,
              out_channels=128),
    head=dict(type='InfoNCEHead', temperature=0.2),  # tau
)
