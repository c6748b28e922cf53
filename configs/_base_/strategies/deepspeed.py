# mmengine's FlexibleRunner with DeepSpeedStrategy (ZeRO stage 2): add this
# file to a config's _base_ list (after the method's config). Needs CUDA and
# the deepspeed package (not part of mmmask's environment; untested here).
#
# Sharded across ranks (ZeRO-2): the optimizer state and the gradients of the
# online encoder. Not sharded: the parameters (every rank holds the whole
# model), so the momentum key encoder (no gradients, EMA-updated on every
# rank from the identical online weights) and the queues (buffers, filled
# with the keys of all ranks) stay identical across ranks, as under DDP.
# DeepSpeed steps the optimizer itself: tools/train.py makes the method's
# optim_wrapper a DeepSpeedOptimWrapper (its optimizer settings are kept; a
# _base_ file cannot set a key that another _base_ file sets).
runner_type = 'FlexibleRunner'
strategy = dict(
    type='DeepSpeedStrategy',
    fp16=dict(enabled=False),
    zero_optimization=dict(stage=2, overlap_comm=True,
                           contiguous_gradients=True),
    gradient_clipping=0.0)
