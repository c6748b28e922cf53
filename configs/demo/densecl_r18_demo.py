# A few minutes of real DenseCL pretraining on the CPU: ResNet-18 on the
# built-in demo images (python tools/make_demo_data.py), 64 px views.
_base_ = [
    '../_base_/datasets/demo_images.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='DenseCL',
    queue_len=4096,
    feat_dim=128,
    momentum=0.99,        # shorter run than the paper's: faster key encoder
    loss_lambda=0.5,
    key_bn='shuffle',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=18, out_indices=(3, ),
                  norm_cfg=dict(type='BN'), zero_init_residual=False),
    neck=dict(type='DenseProjectionNeck', in_channels=512, hid_channels=512,
              out_channels=128, num_grid=None),
    head=dict(type='InfoNCEHead', temperature=0.2),
)

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03, momentum=0.9, weight_decay=1e-4))
max_iters = 300
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters, eta_min=0.)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100,
                    max_keep_ckpts=2))
# default_runtime's hooks, plus the online dense probe (dense/miou in the log
# every 100 iterations; one evaluation costs about one training step)
custom_hooks = [dict(type='SafeCheckpointHook', priority='VERY_HIGH'),
                dict(type='ExactResumeHook'),
                dict(type='NonFiniteLossHook', action='error'),
                dict(type='TrainDataCheckHook'),
                dict(type='DistributedEndHook'),
                dict(type='OnlineDenseProbeHook', interval=100)]
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
