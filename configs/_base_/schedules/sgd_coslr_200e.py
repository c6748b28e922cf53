# MoCo v2 / DenseCL ImageNet schedule: SGD lr 0.03 (batch 256), momentum 0.9,
# weight decay 1e-4, cosine to 0 over 200 epochs.
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=200, by_epoch=True, begin=0, end=200,
         eta_min=0.)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=200)
# --auto-scale-lr rescales lr by (total batch / 256).
auto_scale_lr = dict(base_batch_size=256)
