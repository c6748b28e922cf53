# FCN R50-D8 on PASCAL VOC 2012 + SBD augmented train set (10,582 images),
# 512 x 512 crops, 20k iterations, 16 images a batch, lr 0.01 poly: the
# segmentation transfer protocol of DenseCL (Wang et al., CVPR 2021,
# Sec. 4.3), which uses mmsegmentation's stock recipe.
#
# Changed from the stock mmseg config: the backbone is the plain-stem ResNet
# that mmmask pretrains (mmseg ``ResNet``, deep_stem=False: keys conv1, bn1,
# layer1-4) instead of ``ResNetV1c`` (deep stem: stem.0-8, which a plain
# ResNet checkpoint cannot fill), initialised from the mmmask checkpoint
# with prefix='backbone.'; the model-level ``pretrained`` (ImageNet v1c
# weights) is removed. SyncBN, norm_eval=False, dilations and heads are the
# stock ones.
#
# Checkpoint on the command line:
#   bash tools/benchmarks/mmsegmentation/dist_train.sh THIS_FILE CKPT 4
# or --cfg-options model.backbone.init_cfg.checkpoint=CKPT
#
# Fewer GPUs: the recipe is 4 GPUs x 4 images = 16. Keep 16 (2 GPUs:
# train_dataloader.batch_size=8), or scale lr linearly (0.01 x B / 16).
_base_ = 'mmseg::fcn/fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'

pretrain_checkpoint = ('<PRETRAIN: pass it to dist_train.sh or set '
                       'model.backbone.init_cfg.checkpoint>')

model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        deep_stem=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                      prefix='backbone.')))
