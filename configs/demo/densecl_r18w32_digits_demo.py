# tools/demo.py's run: a few minutes of DenseCL pretraining on the CPU that
# visibly learns. A half-width ResNet-18 (32 base channels) on 32 px views of
# the built-in demo set's digits (data/demo_images/digits/, python
# tools/make_demo_data.py); tools/demo.py probes it before and after on the
# digits the set leaves out. Everything else as densecl_r18_demo.py.
# docs/benchmarks.md, "The demo's budget", has the seeds behind these numbers.
_base_ = ['./densecl_r18_demo.py']

crop_size = 32
model = dict(
    queue_len=1024,       # shorter than the 1,200 training digits
    feat_dim=64,
    backbone=dict(stem_channels=32, base_channels=32),  # C5: 256 x 1 x 1
    neck=dict(in_channels=256, hid_channels=256, out_channels=64),
    data_preprocessor=dict(view_augments=[
        # configs/_base_/datasets/mocov2_views.py's ops fitted to 32 px
        # digits: the blur's sigma range (0.1, 2.0) of a 224 px view times
        # 32 / 224, and no flip (a mirrored digit is another shape)
        dict(type='BatchColorJitter', brightness=0.4, contrast=0.4,
             saturation=0.4, hue=0.1, prob=0.8),
        dict(type='BatchRandomGrayscale', prob=0.2,
             channel_weights=(0.114, 0.587, 0.2989)),
        dict(type='BatchGaussianBlur', sigma_range=(0.1 * 32 / 224,
                                                    2.0 * 32 / 224),
             prob=0.5),
    ]),
)

# CPU side: one fused transform reads each digit, draws both views' crops
# (scale 0.4-1 of the 64 px image) and resizes them to 32 px
# (view_crop, view_pipeline and train_pipeline replace the base's 64 px ones)
view_crop = dict(type='RandomResizedCrop', scale=crop_size,
                 crop_ratio_range=(0.4, 1.), backend='cv2')
view_pipeline = [view_crop]
train_pipeline = [
    dict(type='DecodeMultiViewCrops', num_views=2, crop=view_crop),
    dict(type='PackInputs'),
]
max_iters = 600
train_dataloader = dict(
    batch_size=128,
    # the 1,200 digits 64 times over: one epoch is the whole run (mmengine's
    # IterBasedTrainLoop sleeps 2 s each time it restarts the data, which
    # every 9 iterations of a 1,200-image set would cost 0.2 s per step)
    dataset=dict(
        _delete_=True, type='RepeatDataset', times=64,
        dataset=dict(type='CustomDataset', data_root={{_base_.data_root}},
                     data_prefix='digits', with_label=False,
                     pipeline=train_pipeline)))

optim_wrapper = dict(optimizer=dict(lr=0.06))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0,
         end=max_iters, eta_min=0.)
]
train_cfg = dict(max_iters=max_iters)
default_hooks = dict(
    logger=dict(interval=50),
    checkpoint=dict(interval=200, max_keep_ckpts=1))
