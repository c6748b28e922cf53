# UperNet R50 on ADE20K (20,210 training images, 150 classes), 512 x 512
# crops, 160k iterations, 16 images a batch, lr 0.01 poly (mmsegmentation's
# stock recipe; for a shorter run inherit upernet_r50_4xb4-80k_ade20k-512x512
# instead).
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
# Fewer GPUs: the recipe is 4 GPUs x 4 images = 16. Keep 16 (2 GPUs:
# train_dataloader.batch_size=8), or scale lr linearly (0.01 x B / 16).
_base_ = 'mmseg::upernet/upernet_r50_4xb4-160k_ade20k-512x512.py'

pretrain_checkpoint = ('<PRETRAIN: pass it to dist_train.sh or set '
                       'model.backbone.init_cfg.checkpoint>')

model = dict(
    pretrained=None,
    backbone=dict(
        type='ResNet',
        deep_stem=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                      prefix='backbone.')))
