# MACRL, ViT-S with 4 px patches, CIFAR-10 (mmpretrain's layout:
# data/cifar10/cifar-10-batches-py/), 800 epochs, batch 512 (8 GPUs x 64).
# Yao et al., "Masked Contrastive Representation Learning",
# arXiv 2211.06012. The paper has no public code: the model is mmmask's
# documented default design (docs/methods.md section 5,
# configs/_base_/models/macrl_vit-s-p4_32px.py); the recipe below (MAE's
# AdamW recipe at this batch) is mmmask's choice too.
_base_ = ['_base_/models/macrl_vit-s-p4_32px.py',
          '_base_/schedules/adamw_mae.py', '_base_/default_runtime.py']

num_gpus = 8
batch_per_gpu = 64
total_batch = num_gpus * batch_per_gpu
max_epochs = 800
warmup_epochs = 40

# Asymmetric corruption: the strong branch (mask 0.75) sees MoCo v2's
# augmentation, the weak branch (mask 0.5) crop and flip only.
model = dict(data_preprocessor=dict(view_augments=[
    # strong view
    [dict(type='BatchColorJitter', brightness=0.4, contrast=0.4,
          saturation=0.4, hue=0.1, prob=0.8),
     dict(type='BatchRandomGrayscale', prob=0.2,
          channel_weights=(0.114, 0.587, 0.2989)),
     dict(type='BatchRandomFlip', prob=0.5)],
    [dict(type='BatchRandomFlip', prob=0.5)],  # weak view
]))
# Split pipeline: the data workers crop; the strong view's colour ops and
# both views' flips run batched on the device (model.data_preprocessor
# view_augments, one list per view). Per-image pipeline: view_augments=[]
# and the transforms in these view pipelines (docs/pipeline.md).
strong_view = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='cv2')]
weak_view = [
    dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.),
         backend='cv2')]
train_pipeline = [
    dict(type='MultiView', num_views=[1, 1],
         transforms=[strong_view, weak_view]),  # [strong, weak]
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=batch_per_gpu, num_workers=4, drop_last=True,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CIFAR10', data_root='data/cifar10', split='train',
                 pipeline=train_pipeline))

# lr 1.5e-4 x batch / 256; AdamW (0.9, 0.95), wd 0.05 except norms, biases,
# pos_embed and tokens, AMP: _base_/schedules/adamw_mae.py
optim_wrapper = dict(optimizer=dict(lr=1.5e-4 * total_batch / 256))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0,
         end=warmup_epochs, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - warmup_epochs,
         by_epoch=True, begin=warmup_epochs, end=max_epochs, eta_min=0.,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=50,
                                     max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=total_batch)
randomness = dict(seed=0, diff_rank_seed=True)
