# MaskCo, ResNet-50, COCO train2017 (118k images, no labels), 800 epochs,
# 8 GPUs x 32 images. Zhao et al., "Self-Supervised Visual Representations
# Learning by Contrastive Mask Prediction", ICCV 2021 (arXiv 2108.07954),
# which pretrains on COCO (and Conceptual Captions) to show that region
# contrast does not need ImageNet's one-object images.
#
# Data: COCO's images only, data/coco/train2017/*.jpg (no annotation file;
# every image of the folder is a sample).
#
# Everything of configs/maskco_r50.py (views that keep their geometry, the
# overlap region, the mask prediction head, queue 65536, m 0.999, tau 0.2).
# Open choices (MaskCo has no public code, and mmmask has not verified the
# paper's COCO schedule): epochs, learning rate and batch are DenseCL's
# authors' COCO recipe (configs/densecl_r50_coco-800e.py: 256 images a step,
# SGD lr 0.3, momentum 0.9, wd 1e-4, cosine to 0 over 800 epochs), so the two
# COCO recipes compare like for like. Fewer GPUs: keep 256 images a step or
# --auto-scale-lr.
_base_ = ['./maskco_r50.py']

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
