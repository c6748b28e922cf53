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
    # Masking strategy, one switch for the query mask, its fill, the hard
    # negative's mask and its fill (the authors' --strategy; the exact
    # settings are SALIENCY_STRATEGIES in mmmask/models/algorithms/
    # saliency_mocov2.py). Foreground: saliency >= mean - 0.6 std, cells at
    # their true positions. Query: r ~ U[0.05, 0.25], int(49 r) cells;
    # hard negative: the key view, foreground cells only, r ~ U[0.4, 0.7].
    # 'hp' (the paper's): both views high-pass filtered x - GaussBlur(k 11,
    #   sigma 5), then the masked cells get noise (query std 0.18, hard
    #   negative 0.14); query: focal p 0.2 (keep a 200 x 200 square), else
    #   channel-wise (0.7) or spatial (0.3) cells, round(min(r * fg_ratio,
    #   0.55) * 49) of them foreground; hard negative: the same kinds (focal:
    #   a 130 x 130 square placed uniformly), round(min(r * fg_ratio, 0.55)
    #   * 49) foreground cells.
    # 'blur': unfiltered views; spatial cells only (no focal, no channel-
    #   wise, no 0.55 cap), copied from the Gaussian-blurred view (k 31,
    #   sigma 10), in the query and the hard negative.
    # 'mean': as 'blur', the cells set to the view's channel mean.
    # From the command line: --cfg-options model.strategy=blur.
    # Any of query_mask / fill / hard_negative_mask / hard_negative_fill
    # given here changes the strategy's part: its arguments (e.g.
    # query_mask=dict(base_size=64) for 64 px views), or, with another
    # type, the whole part (e.g. fill=dict(type='MeanFill')).
    strategy='hp',
    # The hard negative's similarity is scaled by alpha, then / tau as every
    # logit; hard_negative=False leaves it out.
    alpha=2.0,
)
