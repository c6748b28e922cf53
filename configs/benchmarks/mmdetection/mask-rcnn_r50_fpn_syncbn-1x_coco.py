# Mask R-CNN R50-FPN on COCO, 1x schedule (90k iterations at 16 images,
# lr 0.02): the COCO transfer protocol of MoCo (He et al., CVPR 2020,
# Sec. 4.2) with SyncBN in the backbone, the FPN and the heads and no
# frozen stage (without SyncBN users report 35.8 instead of 37.8 AP).
#
# Changed from the stock mmdet config:
#   * backbone: pretrained from mmmask (prefix='backbone.'), SyncBN in
#     train mode (norm_eval=False), frozen_stages=-1;
#   * FPN with SyncBN;
#   * box head: 4 convs + 1 fc with SyncBN (mmdet's Shared4Conv1FCBBoxHead,
#     detectron2's FastRCNNConvFCHead used with normalised FPN heads) instead
#     of the 2-fc head, which has no normalisation layer;
#   * mask head with SyncBN. The RPN head has no normalisation (as in
#     detectron2).
# Input normalisation (RGB, ImageNet mean/std) is the stock one and the one
# mmmask pretrains with.
#
# Checkpoint on the command line:
#   bash tools/benchmarks/mmdetection/dist_train.sh THIS_FILE CKPT 8
# or --cfg-options model.backbone.init_cfg.checkpoint=CKPT
#
# Fewer GPUs: 8 GPUs x 2 images = 16. Keep 16 (4 GPUs:
# train_dataloader.batch_size=4) or use --auto-scale-lr
# (lr = 0.02 x B / 16; linear scaling rule, Goyal et al. 2017).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

pretrain_checkpoint = ('<PRETRAIN: pass it to dist_train.sh or set '
                       'model.backbone.init_cfg.checkpoint>')
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                      prefix='backbone.')),
    neck=dict(norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256,
                       norm_cfg=norm_cfg),
        mask_head=dict(norm_cfg=norm_cfg)))

auto_scale_lr = dict(enable=False, base_batch_size=16)
