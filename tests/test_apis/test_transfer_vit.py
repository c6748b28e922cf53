"""CMAE and MACRL end to end: short tools/train.py runs of the tiny demo
configs (4-layer, 64-wide ViT, 4 px patches, 32 px views of the demo
images), the reconstruction PNG tool on their checkpoints, and their
transfer into mmpretrain's fine-tuning config and mmseg's UperNet-ViT
config:

* in another process, the benchmark config (with a tiny backbone of the
  same shape) is built by mmpretrain / mmseg, its ``Pretrained`` init_cfg
  runs through mmengine's own checkpoint loader and file backend (no
  mmmask model or dataset imported), and every encoder tensor of
  the model equals the checkpoint's ``backbone.`` tensor; at another input
  size the position embedding equals mmpretrain's bicubic resize of the
  checkpoint's;
* the fine-tuning configs' optimizers decay the lr by 0.65 per block;
* the launchers' pre-flight check (mmmask/engine/checkpoint/transfer.py)
  reports every tensor loaded, ``pos_embed`` resized, ``ln2`` new;
* the online encoder's keys are exactly mmpretrain ``VisionTransformer``'s.
"""
import json
import os
import os.path as osp
import sys

import numpy as np
import pytest
from stock_check import STOCK_MMENGINE
from helpers import (ROOT, UTILS, VIT_LAYERS, assert_finite_losses,
                     check_ok, run)

METHODS = ['cmae', 'macrl']
LOSS_KEYS = dict(cmae={'loss_rec', 'loss_ct'},
                 macrl={'loss_con', 'loss_rec'})
FT_CONFIG = osp.join(ROOT, 'configs', 'benchmarks', 'classification',
                     'vit-base-p16_ft-8xb128-coslr-100e_in1k.py')
CIFAR_FT_CONFIG = osp.join(
    ROOT, 'configs', 'benchmarks', 'classification',
    'vit-small-p4_ft-1xb256-coslr-100e_cifar10.py')
SEG_CONFIG = osp.join(ROOT, 'configs', 'benchmarks', 'mmsegmentation', 'vit',
                      'upernet_vit-b16_4xb4-160k_ade20k-512x512.py')
TOOL = osp.join(ROOT, 'tools', 'visualization',
                'visualize_reconstruction.py')


@pytest.fixture(scope='module', params=METHODS)
def pretrain(request, pretrained_vit):
    ckpt, work, data = pretrained_vit(request.param)
    return request.param, ckpt, work, data


def test_runner_trains(pretrain):
    method, _, work, _ = pretrain
    rows = assert_finite_losses(work, iters=2)
    for row in rows:
        assert LOSS_KEYS[method] <= set(row)
        total = sum(row[k] for k in LOSS_KEYS[method])
        assert row['loss'] == pytest.approx(total, rel=1e-4)


# The check runs in its own process: tests/utils/vit_transfer_check.py.
JOBS = [(FT_CONFIG, 'mmpretrain', 32), (FT_CONFIG, 'mmpretrain', 64),
        (CIFAR_FT_CONFIG, 'mmpretrain', 32), (SEG_CONFIG, 'mmseg', 64)]


@pytest.fixture(scope='module')
def transferred(pretrain):
    """``{(config, scope, img): result}`` of the check process."""
    _, ckpt, _, _ = pretrain
    proc = run([sys.executable, osp.join(UTILS, 'vit_transfer_check.py'),
                ckpt, str(VIT_LAYERS), json.dumps(JOBS)])
    check_ok(proc)
    line = [ln for ln in proc.stdout.splitlines()
            if ln.startswith('RESULT ')][-1]
    return dict(zip(JOBS, json.loads(line[len('RESULT '):])))


def _encoder_keys(ckpt):
    import torch
    sd = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    return {k[len('backbone.'):]: v for k, v in sd.items()
            if k.startswith('backbone.')}


def test_online_encoder_keys_are_mmpretrain_vit_keys(pretrain):
    import torch
    from mmpretrain.models import VisionTransformer
    _, ckpt, _, _ = pretrain
    vit = VisionTransformer(
        arch=dict(embed_dims=64, num_layers=VIT_LAYERS, num_heads=4,
                  feedforward_channels=256),
        img_size=32, patch_size=4, final_norm=True, out_type='raw')
    enc = _encoder_keys(ckpt)
    ref = vit.state_dict()
    assert set(enc) == set(ref)
    assert all(enc[k].shape == ref[k].shape for k in ref)
    # and it loads strictly into mmpretrain's ViT
    vit.load_state_dict(enc, strict=True)
    assert torch.equal(vit.layers[0].attn.qkv.weight,
                       enc['layers.0.attn.qkv.weight'])


@pytest.mark.parametrize('config,img', [(FT_CONFIG, 32), (FT_CONFIG, 64),
                                        (CIFAR_FT_CONFIG, 32)],
                         ids=['in1k-32px', 'in1k-64px', 'cifar10-32px'])
def test_loads_into_mmpretrain_finetune_config(pretrain, transferred, config,
                                               img):
    _, ckpt, _, _ = pretrain
    enc = _encoder_keys(ckpt)
    out = transferred[(config, 'mmpretrain', img)]
    assert out['stock'] == STOCK_MMENGINE
    assert out['backbone_type'].endswith('VisionTransformer')
    # fine-tuning ViT: no final ln1 (final_norm=False), a new ln2
    expected = sorted(k for k in enc if not k.startswith('ln1.'))
    got = sorted(k.replace(' (resized)', '') for k in out['equal'])
    assert got == expected, out['differ']
    assert out['differ'] == ['ln2.weight', 'ln2.bias']
    assert out['total'] == len(expected) + 2
    rep = out['report']
    assert rep['loaded'] == rep['total'] == len(expected)
    assert rep['new'] == ['ln2.weight', 'ln2.bias'] and not rep['missing']
    assert rep['resized'] == ([] if img == 32 else ['pos_embed'])
    assert ('pos_embed (resized)' in out['equal']) == (img != 32)


def test_loads_into_mmseg_upernet_vit_config(pretrain, transferred):
    _, ckpt, _, _ = pretrain
    enc = _encoder_keys(ckpt)
    out = transferred[(SEG_CONFIG, 'mmseg', 64)]
    # the config imports mmmask's layer-decay optimizer constructor (mmseg's
    # own does not know mmpretrain's ViT); the backbone and its weights
    # are mmpretrain's and mmengine's PretrainedInit's
    assert out['backbone_type'] == \
        'mmpretrain.models.backbones.vision_transformer.VisionTransformer'
    expected = sorted(k for k in enc if not k.startswith('ln1.'))
    got = sorted(k.replace(' (resized)', '') for k in out['equal'])
    assert got == expected and out['differ'] == []
    assert 'pos_embed (resized)' in out['equal']  # 8 x 8 -> 16 x 16 grid
    assert out['report']['loaded'] == out['report']['total'] == len(expected)
    assert out['report']['resized'] == ['pos_embed']


def test_reconstruction_tool_writes_png(pretrain, tmp_path, capsys):
    from PIL import Image
    method, ckpt, work, data = pretrain
    config = osp.join(work, osp.basename(
        dict(cmae='cmae_vit-tiny_demo.py',
             macrl='macrl_vit-tiny_demo.py')[method]))
    image = osp.join(data, 'photos',
                     sorted(os.listdir(osp.join(data, 'photos')))[0])
    out = str(tmp_path / 'rec.png')
    # the tool's main() in this process (a subprocess would only add the
    # import time): same code path as the command line
    from tools.visualization import visualize_reconstruction as tool
    assert tool.main([config, ckpt, image, '--out', out,
                      '--panel-size', '64']) == 0
    printed = capsys.readouterr().out
    png = np.asarray(Image.open(out).convert('RGB'))
    assert png.shape == (64, 4 * 64 + 3 * 4, 3)
    panels = [png[:, i * 68:i * 68 + 64].astype(int) for i in range(4)]
    original, masked, recon, pasted = panels
    # masked panel: grey on the masked patches (8 x 8 px each at 64 px for
    # an 8 x 8 token grid), the original elsewhere; the pasted
    # reconstruction shows the original on the visible patches
    grey = np.all(masked == 127, axis=-1).reshape(8, 8, 8, 8)
    patch_grey = grey.transpose(0, 2, 1, 3).reshape(8, 8, 64).all(-1)
    num_masked = int(printed.split('masked ')[1].split(' ')[0])
    assert patch_grey.sum() == num_masked
    expected = {'cmae': 64 - 20, 'macrl': 48}[method]
    assert num_masked == expected
    vis = ~np.repeat(np.repeat(patch_grey, 8, 0), 8, 1)
    assert np.abs(masked[vis] - original[vis]).max() <= 1
    assert np.abs(pasted[vis] - original[vis]).max() <= 1
    assert np.abs(recon[~vis] - pasted[~vis]).max() <= 1
    assert np.abs(recon[vis] - original[vis]).mean() > 1  # a real prediction


@pytest.mark.parametrize('job', JOBS[1:],
                         ids=['in1k', 'cifar10', 'upernet-ade20k'])
def test_finetune_configs_decay_lr_layer_by_layer(pretrain, transferred,
                                                  job):
    """Layer-wise lr decay 0.65 (mmpretrain's / mmseg's constructors):
    block i of L gets 0.65 ** (L - i) of the base lr, the patch embedding
    0.65 ** (L + 1)."""
    lrs = transferred[job]['layer_lr']
    L = VIT_LAYERS
    assert lrs['patch_embed.projection.weight'] == pytest.approx(0.65**(L + 1))
    for i in range(L):
        assert lrs[f'layers.{i}.attn.qkv.weight'] == pytest.approx(
            0.65**(L - i))


def test_mmseg_runner_run_from_cmae_checkpoint(tmp_path, pretrained_vit):
    """tools/benchmarks/mmsegmentation/train.py on the UperNet-ViT config
    (tiny backbone at the pre-training size, 64 px crops of the bundled
    photographs in ADE20K's layout): the pre-flight reports every encoder
    tensor, the probe hook finds each equal to the checkpoint's after
    init_weights, and two iterations give finite losses."""
    from helpers import write_tiny_config
    from transfer_sets import make_seg_set
    ckpt, _, _ = pretrained_vit('cmae')
    data_root = str(tmp_path / 'data')
    make_seg_set(data_root, 'upernet_r50_4xb4-160k_ade20k-512x512.py')
    probe_out = str(tmp_path / 'probe.json')
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_config(tiny, SEG_CONFIG, ckpt, probe_out, f"""\
        custom_imports = dict(imports=['transfer_probe', 'mmpretrain.models',
                                       'mmmask.engine.optimizers'],
                              allow_failed_imports=False)
        crop_size = (64, 64)
        model = dict(
            data_preprocessor=dict(size=crop_size),
            backbone=dict(arch=dict(_delete_=True, embed_dims=64,
                                    num_layers={VIT_LAYERS}, num_heads=4,
                                    feedforward_channels=256),
                          img_size=32, patch_size=4,
                          out_indices=tuple(range({VIT_LAYERS}))),
            neck=dict(embed_dim=64),
            decode_head=dict(in_channels=[64] * 4, channels=16),
            auxiliary_head=dict(in_channels=64, channels=16),
            test_cfg=dict(mode='whole'))
        optim_wrapper = dict(  # the config's, without AMP (needs a GPU)
            _delete_=True, type='OptimWrapper',
            optimizer=dict(type='AdamW', lr=1e-4, weight_decay=0.05),
            constructor='BackboneLayerDecayOptimWrapperConstructor',
            paramwise_cfg=dict(layer_decay_rate=0.65))
        pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='RandomCrop', crop_size=crop_size),
            dict(type='RandomFlip', prob=0.5),
            dict(type='PackSegInputs')]
        train_dataloader = dict(
            batch_size=2, num_workers=0, persistent_workers=False,
            dataset=dict(_delete_=True, type='ADE20KDataset',
                         data_root={data_root!r}, reduce_zero_label=True,
                         data_prefix=dict(img_path='images/training',
                                          seg_map_path='annotations/training'),
                         pipeline=pipeline))
        train_cfg = dict(max_iters=2, val_interval=1000)
        """)
    work = str(tmp_path / 'work')
    proc = run([sys.executable, osp.join(ROOT, 'tools', 'benchmarks',
                                         'mmsegmentation', 'train.py'),
                tiny, '--pretrained', ckpt, '--work-dir', work])
    check_ok(proc)
    with open(probe_out) as f:
        probe = json.load(f)
    num = len([k for k in _encoder_keys(ckpt) if not k.startswith('ln1.')])
    assert probe['differ'] == []
    assert probe['backbone'] == probe['backbone_total'] == num
    assert f'{num}/{num} tensors loaded' in proc.stdout + proc.stderr
    rows = assert_finite_losses(work)
    assert all('decode.loss_ce' in r and 'aux.loss_ce' in r for r in rows)


def test_transfer_rules_only_excuse_pos_embed_grid_and_finetune_norm():
    """The load report (mmmask/engine/checkpoint/transfer.py): a pos_embed of
    another grid is 'resized', one of another width a mismatch; the avg-pool ViT's ln2 is 'new', but
    a missing block tensor is still missing and fails the strict check."""
    from mmpretrain.models import VisionTransformer

    from mmmask.engine.checkpoint.transfer import (
        PretrainedMismatchError, check_module_against_checkpoint)

    def vit(img, dims=64, **kw):
        return VisionTransformer(
            arch=dict(embed_dims=dims, num_layers=2, num_heads=4,
                      feedforward_channels=128),
            img_size=img, patch_size=4, **kw)

    src = {'backbone.' + k: v for k, v in vit(32).state_dict().items()}
    ft = vit(64, out_type='avg_featmap', final_norm=False)
    rep = check_module_against_checkpoint(ft, src)
    assert rep.resized == ['pos_embed'] and rep.new == ['ln2.weight',
                                                        'ln2.bias']
    assert len(rep.loaded) == rep.total == len(ft.state_dict()) - 2
    with pytest.raises(PretrainedMismatchError, match='pos_embed'):
        check_module_against_checkpoint(vit(32, dims=128), src)
    partial = {k: v for k, v in src.items() if 'layers.1.attn' not in k}
    with pytest.raises(PretrainedMismatchError, match='layers.1.attn'):
        check_module_against_checkpoint(vit(32), partial)
    cls_vit = vit(32, out_type='cls_token', final_norm=True)
    no_ln1 = {k: v for k, v in src.items() if not k.startswith('backbone.ln1')}
    rep = check_module_against_checkpoint(cls_vit, no_ln1, strict=False)
    assert rep.missing == ['ln1.weight', 'ln1.bias'] and rep.new == []
