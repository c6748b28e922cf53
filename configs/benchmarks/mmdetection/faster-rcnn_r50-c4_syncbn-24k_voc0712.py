# Faster R-CNN R50-C4 on VOC07+12 trainval, tested on VOC07 test: the
# detection transfer protocol of MoCo (He et al., CVPR 2020, Sec. 4.2) and
# DenseCL (Wang et al., CVPR 2021): 24k iterations, 16 images a batch,
# lr 0.02, steps at 18k and 22k, 100 warm-up iterations, multi-scale
# training (480-800 px shorter side), 800 px test; SyncBN in the backbone
# and in the res5 shared head, no frozen stage, BN in train mode.
#
# The stock mmdet config this inherits (18k iterations, caffe-style frozen
# ImageNet ResNet) is changed only where the protocol differs:
#   * backbone and roi_head.shared_head (res5) are initialised from the
#     pretrained ResNet: backbone.conv1/bn1/layer1-3 -> backbone,
#     backbone.layer4 -> shared_head.layer4 (mmdet's ResLayer names its
#     stage ``layer4``, so the same prefix='backbone.' lines the keys up);
#   * pytorch style (stride in the 3x3 conv, as mmpretrain/mmmask ResNets)
#     and RGB input normalised with the ImageNet mean/std the pretraining
#     used (the stock config is caffe-style BGR);
#   * 24k iterations instead of 18k.
# Not reproduced: MoCo's detectron2 head adds one extra BN after res5
# (Res5ROIHeadsExtraNorm); mmdet's BBoxHead has no such layer.
#
# Checkpoint: the full mmmask checkpoint (or the output of
# tools/model_converters/extract_backbone_weights.py) is given on the
# command line; both init_cfg entries must point to it:
#   bash tools/benchmarks/mmdetection/dist_train.sh THIS_FILE CKPT 8
# or, with any mmdet launcher:
#   --cfg-options model.backbone.init_cfg.checkpoint=CKPT \
#                 model.roi_head.shared_head.init_cfg.checkpoint=CKPT
#
# Fewer GPUs: the schedule is for 8 GPUs x 2 images = 16 images a batch.
# Keep 16 images (4 GPUs: --cfg-options train_dataloader.batch_size=4), or
# scale the learning rate linearly with the total batch (lr = 0.02 x B / 16,
# what --auto-scale-lr does from auto_scale_lr.base_batch_size=16) and, to
# keep the number of epochs, the iterations and steps by 16 / B.
_base_ = 'mmdet::pascal_voc/faster-rcnn_r50-caffe-c4_ms-18k_voc0712.py'

pretrain_checkpoint = ('<PRETRAIN: pass it to dist_train.sh or set '
                       'model.backbone.init_cfg.checkpoint>')
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    data_preprocessor=dict(
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True),
    backbone=dict(
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                      prefix='backbone.')),
    roi_head=dict(
        shared_head=dict(
            norm_cfg=norm_cfg,
            norm_eval=False,
            style='pytorch',
            init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                          prefix='backbone.'))))

max_iters = 24000
train_cfg = dict(max_iters=max_iters, val_interval=4000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=100),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[18000, 22000], gamma=0.1),
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=4000))
auto_scale_lr = dict(enable=False, base_batch_size=16)
