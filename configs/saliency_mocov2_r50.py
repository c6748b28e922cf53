# Saliency-guided masking on MoCo v2, ResNet-50, ImageNet-100, 200 epochs,
# 8 GPUs x 32 images (the paper's MoCo v2 recipe: configs/mocov2_r50.py,
# whose backbone, neck, queue (65536), m (0.999) and tau (0.2) stay).
# Chin et al., "Masking Improves Contrastive Self-Supervised Learning for
# ConvNets, and Saliency Tells You Where", WACV 2024 (arXiv 2309.12757).
_base_ = ['./mocov2_r50.py']

# ImageNet-100: ImageNet's folder layout restricted to the 100 classes of
# CMC's list: data/imagenet100/train/<wnid>/*.JPEG and
# data/imagenet100/meta/train.txt (lines '<wnid>/<file> <label>' relative to
# train/, as mmpretrain's ImageNet). From an ImageNet folder:
#   python tools/dataset_converters/make_imagenet100.py data/imagenet
#       --out data/imagenet100
train_dataloader = dict(
    dataset=dict(data_root='data/imagenet100/', split='train',
                 ann_file='meta/train.txt'))

model = dict(
    type='SaliencyMoCoV2',
    # Saliency: channel sum of a frozen encoder's C5 map on a 7 x 7 grid.
    # The authors use a supervised ResNet-50; give its local weights here
    # (torchvision or mmpretrain layout). None: the current key encoder.
    saliency_backbone=None,  # e.g. dict(type='ResNet', depth=50, out_indices=(3, ))
    saliency_checkpoint=None,
    grid_size=7,          # 7 x 7 cells of 32 x 32 px on a 224 view
    # Query view: r ~ U[0.05, 0.25], int(49 r) cells, foreground share
    # round(min(r * fg_ratio, 0.55) * 49); focal p 0.2 (keep 200 x 200),
    # else channel-wise (0.7) or spatial (0.3) grid masking. Foreground:
    # saliency >= mean - 0.6 std, cells at their true positions.
    query_mask=dict(type='SaliencyGridMaskGenerator', grid_size=7,
                    ratio_range=(0.05, 0.25), fg_std_factor=0.6,
                    max_fg_ratio=0.55, focal_prob=0.2, focal_size=200,
                    channel_prob=0.7, base_size=224),
    # 'hp' (default): noise std 0.18, both views high-pass filtered
    # x - GaussBlur(k 11, sigma 5). Alternatives:
    # dict(type='BlurFill', kernel_size=31, sigma=10.0) ('blur'),
    # dict(type='MeanFill', mode='image') ('mean').
    fill=dict(type='HighPassNoiseFill', std=0.18, kernel_size=11, sigma=5.0),
    # Hard negative: the key view with foreground cells masked,
    # r ~ U[0.4, 0.7] (focal variant: a 130 x 130 square), noise std 0.14,
    # its logit scaled by alpha before / tau. None disables it.
    hard_negative_mask=dict(type='ForegroundMaskGenerator', grid_size=7,
                            ratio_range=(0.4, 0.7), fg_std_factor=0.6,
                            focal_prob=0.2, focal_size=130, base_size=224),
    hard_negative_fill=dict(type='NoiseFill', std=0.14),
    alpha=2.0,
)
