# Runtime defaults shared by every mmmask config.
default_scope = 'mmmask'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

# Writes checkpoints that torch.load(weights_only=True) accepts without an
# allow-list (message hub stored as plain values) and restores them on resume.
# ExactResumeHook stores the random generators' states and the position in the
# data in every checkpoint, so that --resume goes on exactly; NonFiniteLossHook
# stops on a NaN / inf loss (action='skip' skips the step); TrainDataCheckHook
# says so when the data makes no batch; DistributedEndHook makes the ranks of
# a distributed run wait for the last checkpoint and close the process group.
# tools/train.py adds each when a config's custom_hooks list leaves it out.
custom_hooks = [dict(type='SafeCheckpointHook', priority='VERY_HIGH'),
                dict(type='ExactResumeHook'),
                dict(type='NonFiniteLossHook', action='error'),
                dict(type='TrainDataCheckHook'),
                dict(type='DistributedEndHook')]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to gloo on machines without CUDA.
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
