# End-to-end fine-tuning of a CMAE / MACRL ViT-B/16 on ImageNet-1k with
# layer-wise learning-rate decay (MAE's protocol, which CMAE follows):
# mmpretrain's VisionTransformer, global average pooling + LayerNorm
# (``ln2``, new), 100 epochs, 8 GPUs x 128 = 1024, AdamW lr 2e-3
# (5e-4 x 1024 / 256), betas (0.9, 0.999), wd 0.05, layer decay 0.65,
# drop path 0.1, 5 warm-up epochs, cosine, RandAugment, mixup 0.8,
# cutmix 1.0, label smoothing 0.1 (mmpretrain's MAE fine-tuning config).
#
# Checkpoint on the command line (an mmmask CMAE / MACRL checkpoint: its
# ``backbone.`` tensors are mmpretrain ViT tensors):
#   python tools/benchmarks/downstream_train.py --scope mmpretrain \
#       THIS_FILE --pretrained CKPT
# The pre-flight check reports every encoder tensor loaded; ``ln2`` is
# reported as new (not pretrained), pos_embed as resized when img_size
# differs from the pre-training size.
#
# Fewer GPUs: keep 1024 images a step or scale lr linearly
# (--auto-scale-lr, base batch 1024).
_base_ = 'mmpretrain::mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py'

pretrain_checkpoint = ('<PRETRAIN: pass --pretrained or set '
                       'model.backbone.init_cfg.checkpoint>')

model = dict(backbone=dict(
    type='VisionTransformer', arch='base', img_size=224, patch_size=16,
    drop_path_rate=0.1, out_type='avg_featmap', final_norm=False,
    init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                  prefix='backbone.')))

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4 * 1024 / 256, weight_decay=0.05,
                   betas=(0.9, 0.999)),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(layer_decay_rate=0.65))

# Inheriting an mmpretrain:: config adds _scope_ to collate_fn, which then
# fails to build (see /work/shared/ENV.md); name the function plainly.
train_dataloader = dict(
    collate_fn=dict(_delete_=True, type='default_collate'))
val_dataloader = dict(collate_fn=dict(_delete_=True, type='default_collate'))
test_dataloader = val_dataloader
auto_scale_lr = dict(base_batch_size=1024)
