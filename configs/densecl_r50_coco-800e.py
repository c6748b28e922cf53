# DenseCL, ResNet-50, COCO train2017 (118k images, no labels), 800 epochs,
# 8 GPUs x 32 images. Wang et al., "Dense Contrastive Learning for
# Self-Supervised Visual Pre-Training", CVPR 2021: the "DenseCL COCO" rows.
#
# Data: COCO's images only, data/coco/train2017/*.jpg (no annotation file;
# every image of the folder is a sample).
#
# Schedule and learning rate: the authors' COCO config
# (github.com/WXinlong/DenseCL, configs/selfsup/densecl/densecl_coco_800ep.py,
# commit 5d1c456): 32 images per GPU x 8 GPUs = 256, SGD lr 0.3, momentum
# 0.9, weight decay 1e-4, cosine to 0 over 800 epochs, a checkpoint every
# 40 epochs. Model, queues (65536), m 0.999, tau 0.2, lambda 0.5 and the
# MoCo v2 views are the ImageNet recipe's (configs/densecl_r50.py), as in
# that config. Fewer GPUs: keep 256 images a step or --auto-scale-lr
# (lr 0.3 x batch / 256).
_base_ = ['./densecl_r50.py']

max_epochs = 800
train_dataloader = dict(
    dataset=dict(_delete_=True, type='CustomDataset', data_root='data/coco/',
                 data_prefix='train2017', with_label=False,
                 pipeline={{_base_.train_pipeline}}))

optim_wrapper = dict(optimizer=dict(lr=0.3))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
         end=max_epochs, eta_min=0.)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=40,
                                     max_keep_ckpts=3))
