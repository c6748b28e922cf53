# The MoCo v2 view augmentation (Chen et al. 2020, Sec. 3), defined once for
# both pipelines: RandomResizedCrop 224 scale (0.2, 1), ColorJitter(0.4,
# 0.4, 0.4, 0.1) p=0.8, grayscale p=0.2, Gaussian blur sigma in [0.1, 2]
# p=0.5, horizontal flip p=0.5. docs/pipeline.md.
#
# * split pipeline (default, imagenet_mocov2.py, demo_images.py): the CPU
#   decodes and crops (``view_crop``); ViewAugmentDataPreprocessor applies
#   ``view_augments`` on the model's device, batched;
# * per-image pipeline (imagenet_mocov2_per_image.py,
#   demo_images_per_image.py): mmpretrain / mmcv transforms on the CPU
#   (``view_pipeline_per_image``).
crop_size = 224
mocov2_jitter = dict(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1)
mocov2_jitter_prob = 0.8
mocov2_gray_prob = 0.2
mocov2_gray_weights = (0.114, 0.587, 0.2989)  # B, G, R (ITU-R 601 luma)
mocov2_blur_sigma = (0.1, 2.0)
mocov2_blur_prob = 0.5
mocov2_flip_prob = 0.5

# --- split pipeline: the CPU crop (one place: the fused decode-and-crop
# transform replaces it) and the device ops
view_crop = dict(type='RandomResizedCrop', scale=crop_size,
                 crop_ratio_range=(0.2, 1.), backend='cv2')
# the colour ops alone: the views whose flip runs on the CPU (CMAE's pixel
# shift, imagenet_pixel_shift.py) take these
view_colour_augments = [
    dict(type='BatchColorJitter', **mocov2_jitter, prob=mocov2_jitter_prob),
    dict(type='BatchRandomGrayscale', prob=mocov2_gray_prob,
         channel_weights=mocov2_gray_weights),
    dict(type='BatchGaussianBlur', sigma_range=mocov2_blur_sigma,
         prob=mocov2_blur_prob),
]
view_augments = view_colour_augments + [
    dict(type='BatchRandomFlip', prob=mocov2_flip_prob)]

# --- per-image pipeline: the same augmentation as CPU transforms
view_jitter_per_image = dict(
    type='RandomApply', transforms=[dict(type='ColorJitter', **mocov2_jitter)],
    prob=mocov2_jitter_prob)
view_gray_per_image = dict(type='RandomGrayscale', prob=mocov2_gray_prob,
                           keep_channels=True,
                           channel_weights=mocov2_gray_weights)
view_blur_per_image = dict(type='GaussianBlur',
                           magnitude_range=mocov2_blur_sigma,
                           magnitude_std='inf', prob=mocov2_blur_prob)
view_flip_per_image = dict(type='RandomFlip', prob=mocov2_flip_prob)
view_pipeline_per_image = [
    dict(type='RandomResizedCrop', scale=crop_size, crop_ratio_range=(0.2, 1.),
         backend='pillow'),
    view_jitter_per_image, view_gray_per_image, view_blur_per_image,
    view_flip_per_image,
]
