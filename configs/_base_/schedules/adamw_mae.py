# MAE's pretraining optimiser (CMAE and MACRL use it): AdamW, betas
# (0.9, 0.95), weight decay 0.05 except on norms, biases, pos_embed and the
# cls / mask tokens, AMP. A config sets lr (1.5e-4 x total batch / 256) and
# its warm-up + cosine schedule.
optim_wrapper = dict(
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1.5e-4, betas=(0.9, 0.95),
                   weight_decay=0.05),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0,
        custom_keys={'pos_embed': dict(decay_mult=0.),
                     'cls_token': dict(decay_mult=0.),
                     'mask_token': dict(decay_mult=0.)}))
