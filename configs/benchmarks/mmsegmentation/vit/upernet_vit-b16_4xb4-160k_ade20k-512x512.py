# UperNet with a ViT-B/16 backbone on ADE20K, 512 x 512, 160k iterations,
# 16 images a step (mmseg's MAE recipe, which CMAE follows for ADE20K:
# AdamW lr 1e-4, wd 0.05, layer decay 0.65, drop path 0.1, 1500 warm-up
# iterations, poly; features of blocks 4, 6, 8, 12 through Feature2Pyramid
# (x4, x2, x1, x0.5)).
#
# Changed from the stock mmseg MAE config: the backbone is mmpretrain's
# ``VisionTransformer`` (``type='mmpretrain.VisionTransformer'``), whose
# tensors are named as mmmask's CMAE / MACRL encoders (``patch_embed``,
# ``cls_token``, ``pos_embed``, ``layers.i.attn.qkv``, ...), initialised
# from the mmmask checkpoint with prefix='backbone.'; the position embedding
# is resized from the pre-training grid (14 x 14) to 32 x 32 on load. The
# model-level ``pretrained`` is removed. Layer-wise lr decay comes from
# mmmask's ``BackboneLayerDecayOptimWrapperConstructor`` (mmpretrain's rule,
# depth from the backbone): mmseg's own constructor only knows backbones
# named BEiT / MAE / ConvNeXt. That constructor is the one mmmask part this
# run imports; the checkpoint still goes through mmengine's PretrainedInit.
#
#   bash tools/benchmarks/mmsegmentation/dist_train.sh THIS_FILE CKPT 4
#
# Fewer GPUs: keep 16 images a step or scale lr linearly (1e-4 x B / 16).
_base_ = 'mmseg::mae/mae-base_upernet_8xb2-amp-160k_ade20k-512x512.py'

custom_imports = dict(
    imports=['mmpretrain.models', 'mmmask.engine.optimizers'],
    allow_failed_imports=False)
pretrain_checkpoint = ('<PRETRAIN: pass it to dist_train.sh or set '
                       'model.backbone.init_cfg.checkpoint>')

model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VisionTransformer',
        arch='base',
        img_size=512,
        patch_size=16,
        out_indices=(3, 5, 7, 11),
        out_type='featmap',
        final_norm=False,
        drop_path_rate=0.1,
        norm_cfg=dict(type='LN', eps=1e-6),
        init_cfg=dict(type='Pretrained', checkpoint=pretrain_checkpoint,
                      prefix='backbone.')))

# AdamW lr 1e-4, wd 0.05 (none on norms, biases, tokens, pos_embed),
# layer decay 0.65
optim_wrapper = dict(
    _delete_=True,
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='BackboneLayerDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65, norm_decay_mult=0.0, bias_decay_mult=0.0,
        custom_keys={'.cls_token': dict(decay_mult=0.0),
                     '.pos_embed': dict(decay_mult=0.0)}))

train_dataloader = dict(batch_size=4)
