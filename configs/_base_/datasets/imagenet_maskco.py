# ImageNet, two MoCo v2 views that keep their geometry, and MaskCo's region:
# a box in the views' overlap (sides 0.3-0.6 of it) in both views' pixels,
# masked in the query view.
_base_ = ['./imagenet_mocov2.py']

# Flips and crops record their geometry (mmmask's RandomResizedCrop and
# RandomFlip in the mmmask scope); views are redrawn (up to 10 times) until
# they overlap by >= 5 % of the smaller crop (open choice; a sample whose
# views still do not overlap is left out of the region loss).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GeometricMultiView', num_views=2,
         transforms=[{{_base_.view_pipeline}}], min_overlap=0.05,
         max_attempts=10),
    dict(type='SampleOverlapRegion',
         generator=dict(type='RegionMaskGenerator', side_range=(0.3, 0.6)),
         num_neg_regions=0),
    dict(type='PackInputs',
         algorithm_keys=['view_geometry', 'regions', 'region_valid',
                         'neg_regions']),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
