"""``vit_transfer_check.py CKPT LAYERS JOBS_JSON``: for each (config, scope,
image size) job, build the downstream ViT with ``CKPT`` as its pretrained
init, run the launchers' pre-flight check and ``init_weights``, and print
``RESULT [...]``: which backbone tensors equal the checkpoint's, the load
report, the layer-wise lr (tests/test_apis/test_transfer_vit.py)."""
import json, sys
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmpretrain.models.utils import resize_pos_embed

from mmmask.engine.checkpoint import transfer  # the launchers' pre-flight
from stock_check import mmengine_stock

ckpt_path, layers = sys.argv[1:3]
sd = torch.load(ckpt_path, weights_only=True)['state_dict']


def check(cfg_path, scope, img):
    cfg = Config.fromfile(cfg_path)
    b = cfg.model.backbone
    b.arch = dict(embed_dims=64, num_layers=int(layers), num_heads=4,
                  feedforward_channels=256)
    b.img_size, b.patch_size = int(img), 4
    b.init_cfg.checkpoint = ckpt_path
    if scope == 'mmseg':
        b.out_indices = tuple(range(int(layers)))
        cfg.model.neck.embed_dim = 64
        cfg.model.neck.norm_cfg = dict(type='BN')
        cfg.model.decode_head.in_channels = [64] * 4
        cfg.model.decode_head.channels = 16
        cfg.model.auxiliary_head.in_channels = 64
        cfg.model.auxiliary_head.channels = 16
        import mmseg.engine  # noqa
        import mmseg.models  # noqa
        from mmseg.registry import MODELS
    else:
        cfg.model.head.in_channels = 64
        import mmpretrain.engine  # noqa
        import mmpretrain.models  # noqa
        from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    report, = transfer.check_pretrained_inits(model)
    model.init_weights()
    stock = mmengine_stock(ckpt_path)
    from mmengine.utils import import_modules_from_strings
    import_modules_from_strings(**cfg.get('custom_imports', dict(imports=[])))
    if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':  # CPU here
        cfg.optim_wrapper.type = 'OptimWrapper'
        cfg.optim_wrapper.pop('loss_scale', None)
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.optim import build_optim_wrapper
        optim = build_optim_wrapper(model, cfg.optim_wrapper)
    base_lr = cfg.optim_wrapper.optimizer.lr
    by_param = {}
    for group in optim.param_groups:
        for p in group['params']:
            by_param[id(p)] = group['lr'] / base_lr
    layer_lr = {name: by_param[id(p)] for name, p in
                model.backbone.named_parameters()
                if name.endswith('attn.qkv.weight')
                or name == 'patch_embed.projection.weight'}
    out = dict(equal=[], differ=[], total=0, stock=stock,
               layer_lr=layer_lr,
               backbone_type=type(model.backbone).__module__ + '.' +
               type(model.backbone).__name__,
               report=dict(loaded=len(report.loaded), total=report.total,
                           resized=report.resized, new=report.new,
                           missing=report.missing, summary=report.summary()))
    for k, v in model.backbone.state_dict().items():
        out['total'] += 1
        src = sd.get('backbone.' + k)
        if src is not None and k == 'pos_embed' and src.shape != v.shape:
            side = int((src.shape[1] - 1) ** .5)
            src = resize_pos_embed(src, (side, side), model.backbone.
                                   patch_resolution, 'bicubic', 1)
            k = k + ' (resized)'
        if src is not None and src.shape == v.shape and torch.equal(src, v):
            out['equal'].append(k)
        else:
            out['differ'].append(k)
    return out


print('RESULT ' + json.dumps([check(*job)
                              for job in json.loads(sys.argv[3])]))
