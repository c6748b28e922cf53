# Linear probe on ImageNet-1k (MoCo / DenseCL protocol, mmpretrain's
# linear-classifier recipe): frozen ResNet-50 (all 4 stages, BN in eval
# mode), global average pooling, one linear layer (LinearClsHead), SGD
# lr 30, momentum 0.9, no weight decay, 100 epochs, lr x0.1 at 60 and 80,
# 8 GPUs x 32 images = 256.
#
# Checkpoint on the command line (mmmask checkpoint or extracted backbone):
#   python tools/benchmarks/downstream_train.py --scope mmpretrain THIS_FILE \
#       --pretrained CKPT
# or --cfg-options model.backbone.init_cfg.checkpoint=CKPT
# The same file drives the kNN evaluation (its backbone, preprocessing and
# dataloaders): python tools/analysis_tools/knn_eval.py THIS_FILE CKPT
#
# Fewer GPUs: keep 256 images a batch (train_dataloader.batch_size=64 on 4
# GPUs) or scale lr linearly (30 x B / 256, --auto-scale-lr).
_base_ = 'mmpretrain::mocov2/benchmarks/resnet50_8xb32-linear-steplr-100e_in1k.py'

pretrain_checkpoint = ('<PRETRAIN: pass --pretrained or set '
                       'model.backbone.init_cfg.checkpoint>')

model = dict(
    backbone=dict(
        frozen_stages=4,
        norm_eval=True,
        init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                      prefix='backbone.')),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048))

# Inheriting an mmpretrain:: config adds _scope_ to collate_fn, which then
# fails to build (see /work/shared/ENV.md); name the function plainly.
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'))
val_dataloader = dict(collate_fn=dict(_delete_=True, type='default_collate'))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=256)
