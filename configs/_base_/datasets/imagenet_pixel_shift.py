# ImageNet (imagenet_mocov2.py's layout) with CMAE's pixel-shifting views
# (Huang et al. 2023, docs/methods.md section 2): RandomResizedCrop 256
# (scale 0.2-1, bicubic) + flip; online = top-left 224, no colour; target =
# 224 shifted by U{0..31} with MoCo v2 colour augmentation.
#
# Split pipeline (default): the crop, the shift and the flip stay on the CPU
# (the flip is inside PixelShiftViews' base transforms, shared by both
# views: flipping one view on the device would break the pixel_shift
# correspondence); the target view's colour jitter, grayscale and blur run
# batched on the device (view 1 of data_preprocessor; the online view 0
# gets none). Per-image pipeline: the colour ops of mocov2_views.py
# (view_jitter_per_image, ...) as target_transforms and view_augments=[]
# (or a SelfSupDataPreprocessor).
_base_ = ['./imagenet_mocov2.py']

data_preprocessor = dict(
    type='ViewAugmentDataPreprocessor', mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], to_rgb=True, input_order='bgr',
    view_augments=[
        [],  # online view: no colour
        {{_base_.view_colour_augments}}])  # target: MoCo v2's colour ops
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='PixelShiftViews', crop_size=224, max_shift=32,
         base_transforms=[
             dict(type='RandomResizedCrop', scale=256,
                  crop_ratio_range=(0.2, 1.), interpolation='bicubic',
                  backend='cv2'),
             dict(type='RandomFlip', prob=0.5)],
         target_transforms=[]),
    dict(type='PackInputs', algorithm_keys=['pixel_shift']),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
