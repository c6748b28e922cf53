# RetinaNet R50-FPN on COCO, 1x schedule (12 epochs, 16 images a batch,
# lr 0.01), fine-tuned from an mmmask checkpoint with SyncBN in the
# backbone, the FPN and the head and no frozen stage (the MoCo protocol of
# the R-CNN configs applied to RetinaNet).
#
# Changed from the stock mmdet config: backbone pretrained from mmmask
# (prefix='backbone.'), SyncBN in train mode, frozen_stages=-1; FPN and
# the classification / box subnets with SyncBN (the subnets are shared by
# the pyramid levels, so their BN statistics pool all levels).
#
# Checkpoint on the command line:
#   bash tools/benchmarks/mmdetection/dist_train.sh THIS_FILE CKPT 8
# or --cfg-options model.backbone.init_cfg.checkpoint=CKPT
#
# Fewer GPUs: 8 GPUs x 2 images = 16. Keep 16 or use --auto-scale-lr
# (lr = 0.01 x B / 16).
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'

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
    bbox_head=dict(norm_cfg=norm_cfg))

auto_scale_lr = dict(enable=False, base_batch_size=16)
