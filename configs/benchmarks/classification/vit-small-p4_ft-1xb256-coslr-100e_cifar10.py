# End-to-end fine-tuning of a MACRL ViT-S with 4 px patches (32 px,
# configs/macrl_vit-s-p4_cifar10.py) on CIFAR-10 with layer-wise
# learning-rate decay: mmpretrain's VisionTransformer, global average pooling
# + LayerNorm (``ln2``, new), 100 epochs, batch 256, AdamW lr 1e-3, wd 0.05,
# layer decay 0.65, drop path 0.1, 5 warm-up epochs, cosine. (The MACRL
# paper's fine-tuning recipe is not public; this is MAE's at CIFAR size.)
#
#   python tools/benchmarks/downstream_train.py --scope mmpretrain \
#       THIS_FILE --pretrained CKPT
_base_ = [
    'mmpretrain::_base_/datasets/cifar10_bs16.py',
    'mmpretrain::_base_/default_runtime.py',
]

pretrain_checkpoint = ('<PRETRAIN: pass --pretrained or set '
                       'model.backbone.init_cfg.checkpoint>')
num_classes = 10
max_epochs = 100

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=384, num_layers=12, num_heads=6,
                  feedforward_channels=1536),
        img_size=32, patch_size=4, drop_path_rate=0.1,
        out_type='avg_featmap', final_norm=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                      prefix='backbone.')),
    neck=None,
    head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=384,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                        mode='original'),
              init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]))

train_dataloader = dict(
    batch_size=256, collate_fn=dict(_delete_=True, type='default_collate'))
val_dataloader = dict(batch_size=256,
                      collate_fn=dict(_delete_=True, type='default_collate'))
test_dataloader = val_dataloader

optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05,
                   betas=(0.9, 0.999)),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        custom_keys={'.ln': dict(decay_mult=0.0),
                     '.bias': dict(decay_mult=0.0),
                     '.cls_token': dict(decay_mult=0.0),
                     '.pos_embed': dict(decay_mult=0.0)}))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, by_epoch=True,
         begin=5, end=max_epochs, eta_min=1e-6, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=256)
randomness = dict(seed=0)
