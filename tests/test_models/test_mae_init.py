"""MAE / CMAE initialisation of CMAE and MACRL (issue 16 item 5), on
freshly built demo models: as MAE's and the CMAE authors' ``_init_weights``
(and mmpretrain's MAE ``init_cfg``), every Linear xavier-uniform with zero
bias, every LayerNorm 1 / 0, the patch-embedding conv xavier-uniform over
its flattened kernel, fixed sin-cos position embeddings, cls and mask
tokens N(0, 0.02^2)."""
import math

import pytest
import torch
import torch.nn as nn
from mmpretrain.models.utils import build_2d_sincos_position_embedding
from vit_direct import build, demo_model_cfg

MODELS_UNDER_TEST = {
    'cmae_vit-tiny_demo': ('backbone', 'pixel_decoder', 'feature_decoder',
                           'projector', 'predictor'),
    'macrl_vit-tiny_demo': ('backbone', 'decoder_strong', 'decoder_weak',
                            'projector'),
}


def _check_xavier(name, w):
    w = w.detach()
    fan_out, fan_in = w.shape[0], w[0].numel()
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    assert float(w.abs().max()) <= bound + 1e-7, name
    # U(-a, a): std a / sqrt(3), mean 0; the spread of the std estimate is
    # about std / sqrt(2 n), under 4 % for the smallest matrix here (64 x 8)
    n = w.numel()
    std = bound / math.sqrt(3.0)
    assert float(w.std()) == pytest.approx(std, rel=5 / math.sqrt(2 * n)), \
        name
    assert abs(float(w.mean())) < 5 * std / math.sqrt(n), name
    # and it fills the range (PyTorch's default bound is 1 / sqrt(fan_in))
    assert float(w.abs().max()) > 0.9 * bound, name


@pytest.mark.parametrize('cfg_name', sorted(MODELS_UNDER_TEST))
def test_fresh_model_has_mae_initialisation(cfg_name):
    model = build(demo_model_cfg(cfg_name), seed=1)
    linears = norms = 0
    for part in MODELS_UNDER_TEST[cfg_name]:
        for name, m in getattr(model, part).named_modules():
            name = f'{part}.{name}'
            if isinstance(m, nn.Linear):
                _check_xavier(name, m.weight)
                if m.bias is not None:
                    assert torch.count_nonzero(m.bias) == 0, name
                linears += 1
            elif isinstance(m, nn.LayerNorm):
                assert torch.all(m.weight == 1) and \
                    torch.all(m.bias == 0), name
                norms += 1
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                assert torch.all(m.weight == 1) and \
                    torch.all(m.bias == 0), name
    # attention qkv + proj and 2 FFN layers per block, decoder embed and
    # prediction, 2 per MLP neck: all were seen
    vit = model.backbone
    assert linears >= 4 * len(vit.layers) + 2 + 2
    assert norms >= 2 * len(vit.layers) + 1
    # the patch embedding: xavier-uniform of the (C_out, C_in p p) matrix
    _check_xavier('patch_embed', vit.patch_embed.projection.weight.flatten(1))
    # fixed sin-cos positions, tokens N(0, 0.02^2)
    h, w = vit.patch_resolution
    sincos = build_2d_sincos_position_embedding(h, vit.embed_dims,
                                                cls_token=True)
    torch.testing.assert_close(vit.pos_embed, sincos.float())
    assert not vit.pos_embed.requires_grad
    assert 0.005 < float(vit.cls_token.std()) < 0.04
    decoders = [getattr(model, p) for p in MODELS_UNDER_TEST[cfg_name]
                if 'decoder' in p]
    for dec in decoders:
        assert 0.005 < float(dec.mask_token.std()) < 0.04
        torch.testing.assert_close(
            dec.decoder_pos_embed, build_2d_sincos_position_embedding(
                h, dec.decoder_pos_embed.shape[-1], cls_token=True).float())


def test_pretrained_backbone_is_not_reinitialised(tmp_path):
    """A ``Pretrained`` init_cfg of the backbone keeps its tensors."""
    cfg = demo_model_cfg('cmae_vit-tiny_demo')
    model = build(cfg, seed=3)
    path = str(tmp_path / 'vit.pth')
    torch.save(model.backbone.state_dict(), path)
    cfg.backbone.init_cfg = dict(type='Pretrained', checkpoint=path)
    other = build(cfg, seed=4)
    for (n, a), b in zip(model.backbone.state_dict().items(),
                         other.backbone.state_dict().values()):
        assert torch.equal(a, b), n
