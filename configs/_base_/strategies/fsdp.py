# mmengine's FlexibleRunner with FSDPStrategy (PyTorch FullyShardedDataParallel):
# add this file to a config's _base_ list (after the method's config).
#
# Sharded across ranks: the online encoder's parameters (backbone, neck,
# head), their gradients and the optimizer state (SGD momentum), as one FSDP
# unit around the whole model (set model_wrapper.auto_wrap_policy to shard
# finer). They are gathered for each forward / backward.
# Not sharded: the momentum key encoder (ignored_modules: every rank keeps a
# full copy; it has no gradients and its EMA update reads the online weights
# while FSDP has gathered them for the forward, so it stays identical across
# ranks), and the queues and BN statistics (buffers, which FSDP never shards).
# use_orig_params=True is required: the EMA update and the parameter groups
# address the online parameters by name. Checkpoints hold the full state dict
# (gathered on rank 0), loadable by mmdet / mmseg like any other.
# On a machine without CUDA, tools/train.py sets device_id=None (CPU, gloo).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='FSDPStrategy',
    model_wrapper=dict(type='MMFullyShardedDataParallel',
                       use_orig_params=True,
                       ignored_modules=['key_encoder']),
    state_dict_cfg='full')
