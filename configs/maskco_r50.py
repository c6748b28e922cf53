# MaskCo, ResNet-50, ImageNet, 200 epochs, 8 GPUs x 32 images, on the MoCo
# v2 recipe (configs/mocov2_r50.py: backbone, MLP neck, queue 65536 of
# region keys from all ranks, m 0.999, tau 0.2, views, schedule).
# Data: mmpretrain's ImageNet layout, data/imagenet/train/<wnid>/*.JPEG and
# data/imagenet/meta/train.txt ('<wnid>/<file> <label>' per line).
# Zhao et al., "Self-Supervised Visual Representations Learning by
# Contrastive Mask Prediction", ICCV 2021 (arXiv 2108.07954).
# No public code: every open choice below is mmmask's documented default
# (docs/methods.md section 4, docs/masking.md).
_base_ = ['./mocov2_r50.py']

# Two MoCo v2 views that keep their geometry (DecodeMultiViewCrops records
# the crops, the device-side flip updates the regions), redrawn up to 10 times until they overlap by >= 5 %
# of the smaller crop; a region in the overlap (sides 0.3-0.6 of it) in both
# views' pixels, masked in the query view. A sample whose views still do not
# overlap is left out of the loss and of the key queue.
train_pipeline = [
    dict(type='DecodeMultiViewCrops', num_views=2,
         crop={{_base_.view_crop}}, min_overlap=0.05, max_attempts=10),
    dict(type='SampleOverlapRegion',
         generator=dict(type='RegionMaskGenerator', side_range=(0.3, 0.6)),
         num_neg_regions=0),  # K same-image negatives (with the flag below)
    dict(type='PackInputs',
         algorithm_keys=['view_geometry', 'regions', 'region_valid',
                         'neg_regions']),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

model = dict(
    type='MaskCo',
    # Mask prediction head on the query C5 map: 2 x Conv3x3-BN-ReLU, residual.
    mask_head=dict(type='MaskPredictionHead', in_channels=2048, num_convs=2,
                   residual=True),
    # The masked region is filled with the dataset mean (0 after
    # normalisation).
    mask_fill=dict(type='MeanFill', mode='dataset'),
    roi_size=7,           # RoIAlign 7 x 7 on both views
    roi_sampling_ratio=2,
    # Same-image negatives: set SampleOverlapRegion's num_neg_regions above
    # to K > 0 and this to True.
    use_same_image_negatives=False,
)
