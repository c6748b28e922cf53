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
# This list is the one source of the default hooks: tools/train.py adds each
# one that a config's custom_hooks list leaves out, and says which.
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
# A load_from / resume checkpoint must fit the model: a tensor of another
# shape, a missing or an unexpected key stops the run naming the first ones.
# allow_partial=True loads only the tensors that fit (the rest stay as
# initialised) and logs a warning instead.
load_cfg = dict(allow_partial=False)
resume = False
randomness = dict(seed=None, deterministic=False)
