# mmengine's FlexibleRunner with DDPStrategy: add this file to a config's
# _base_ list (after the method's config) to train through the strategy API.
# Same as the default Runner + MMDistributedDataParallel: every rank holds the
# whole model (online and momentum key encoder, queues) and the optimizer
# state; gradients of the online encoder are all-reduced. The key encoder is
# never trained (no gradients), its EMA update runs on every rank from the
# identical online weights, and queues enqueue the keys of all ranks, so both
# stay identical across ranks. On a machine without CUDA, tools/train.py sets
# device_ids=None and the gloo backend.
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DDPStrategy',
    model_wrapper=dict(type='MMDistributedDataParallel',
                       broadcast_buffers=False,
                       find_unused_parameters=False))
