# FCN R50-D8 on Cityscapes fine train (2,975 images), 769 x 769 crops, 40k
# iterations, 8 images a batch, lr 0.01 poly: the Cityscapes transfer
# protocol of DenseCL (Wang et al., CVPR 2021, Sec. 4.3), mmsegmentation's
# stock recipe.
#
# Changed from the stock mmseg config: plain-stem ``ResNet`` (deep_stem=False,
# the layout mmmask pretrains: conv1, bn1, layer1-4) instead of
# ``ResNetV1c``, initialised from the mmmask checkpoint with
# prefix='backbone.'; the model-level ``pretrained`` is removed. SyncBN,
# norm_eval=False and the heads are the stock ones.
#
# Checkpoint on the command line:
#   bash tools/benchmarks/mmsegmentation/dist_train.sh THIS_FILE CKPT 4
# or --cfg-options model.backbone.init_cfg.checkpoint=CKPT
#
# Fewer GPUs: the recipe is 4 GPUs x 2 images = 8. Keep 8 (2 GPUs:
# train_dataloader.batch_size=4), or scale lr linearly (0.01 x B / 8).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-769x769.py'

pretrain_checkpoint = ('<PRETRAIN: pass it to dist_train.sh or set '
                       'model.backbone.init_cfg.checkpoint>')

model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        deep_stem=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                      prefix='backbone.')))
