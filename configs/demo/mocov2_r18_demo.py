# A few minutes of real MoCo v2 pretraining on the CPU: ResNet-18 on the
# built-in demo images (python tools/make_demo_data.py), 64 px views.
_base_ = ['./densecl_r18_demo.py']

model = dict(
    _delete_=True,
    type='MoCoV2',
    queue_len=4096,
    feat_dim=128,
    momentum=0.99,
    key_bn='shuffle',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(type='ResNet', depth=18, out_indices=(3, ),
                  norm_cfg=dict(type='BN'), zero_init_residual=False),
    neck=dict(type='MLPProjectionNeck', in_channels=512, hid_channels=512,
              out_channels=128),
    head=dict(type='InfoNCEHead', temperature=0.2),
)
