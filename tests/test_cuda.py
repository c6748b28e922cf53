"""The CUDA path (``pytest -m cuda``; ``bash tools/gpu_check.sh`` runs these
and prints them in its table). Without a CUDA device every test here is
skipped at collection, before any model is built.

* each method's losses (MoCo v2, DenseCL, MaskCo, saliency-guided MoCo v2,
  CMAE, MACRL) and the gradients of their sum on CUDA equal the CPU ones on
  the same weights, inputs and random draws (float32, TF32 off);
* AMP (fp16 and bf16 autocast) and channels_last: the losses are finite and
  close to float32's, and AMP training steps stay finite;
* SyncBN in the key encoder (``key_bn='sync'``) in one NCCL process stays
  SyncBN and gives the loss of plain BN (one process: the same statistics);
* the device-side view augmentation (``ViewAugmentDataPreprocessor``) on
  CUDA equals its CPU result (skipped while it is not registered);
* ``tools/dist_train.sh`` with NCCL on one GPU writes a DenseCL ResNet-50
  checkpoint, from which one mmdet Mask R-CNN and one mmseg FCN run of
  2 iterations each train on CUDA through
  ``tools/benchmarks/{mmdetection,mmsegmentation}/dist_train.sh``.
"""
import copy
import json
import math
import os
import os.path as osp
import socket
import sys

import numpy as np
import pytest
import torch
from helpers import (ROOT, TINY_C5, assert_finite_losses, build_mmmask_model,
                     check_ok, contrastive_cfg, run, tiny_resnet18)

NO_CUDA = ('no CUDA device (torch.cuda.is_available() is False): the CUDA '
           'tests run on a GPU host, e.g. bash tools/gpu_check.sh')
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason=NO_CUDA)]

# float32 on both devices: equal up to summation order
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(autouse=True)
def exact_float32():
    """TF32 off (cuDNN convolutions use it by default): float32 on CUDA is
    then float32, comparable with the CPU's."""
    old = (torch.backends.cudnn.allow_tf32,
           torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 \
        = old


# --------------------------------------------------------------------------
# the methods' tiny models and inputs (the CPU tests' own)
# --------------------------------------------------------------------------
def _contrastive(method):
    neck = dict(in_channels=TINY_C5, hid_channels=32, out_channels=16)
    extra = {}
    if method == 'densecl':
        neck.update(num_grid=None)
        extra = dict(loss_lambda=0.5)
    torch.manual_seed(0)
    model = build_mmmask_model(contrastive_cfg(
        'mmmask', method, neck, backbone=tiny_resnet18(), queue_len=32,
        feat_dim=16, key_bn='none', **extra))
    g = torch.Generator().manual_seed(1)
    views = [torch.randn(4, 3, 64, 64, generator=g) for _ in range(2)]
    return model, views, None


def _maskco():
    from test_maskco import loss_setup
    return loss_setup()


def _saliency():
    """Blur / mean fills: the default noise fills draw with
    ``torch.randn_like`` on the images' device, whose numbers differ
    between the CPU and CUDA by design."""
    from test_saliency_mocov2 import tiny_saliency, views
    torch.manual_seed(0)
    model = tiny_saliency(fill=dict(type='BlurFill'),
                          hard_negative_fill=dict(type='MeanFill'))
    return model, views(n=6, size=64), None


def _cmae():
    from test_cmae import cmae_cfg, draw, samples_with
    from vit_direct import build
    model = build(cmae_cfg())
    g = torch.Generator().manual_seed(1)
    views = [torch.randn(4, 3, 32, 32, generator=g) for _ in range(2)]
    return model, views, samples_with(draw(model, 4, seed=2))


def _macrl():
    from test_macrl import macrl_cfg, views
    from vit_direct import build
    return build(macrl_cfg()), views(seed=1), None


METHODS = dict(mocov2=lambda: _contrastive('mocov2'),
               densecl=lambda: _contrastive('densecl'), maskco=_maskco,
               saliency_mocov2=_saliency, cmae=_cmae, macrl=_macrl)


def losses_and_grads(model, views, samples, device, seed=7, dtype=None,
                     channels_last=False):
    """``model.loss`` on ``device`` after seeding every global generator
    (what the models draw outside ``StepRandom`` comes from them), then the
    backward of the losses' sum. Returns ({name: loss}, {param: grad}) on
    the CPU in float32."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    views = [v.to(device).contiguous(memory_format=fmt) for v in views]
    if samples is not None:
        samples = [s.to(device) for s in copy.deepcopy(samples)]
    with torch.autocast(device.type, dtype=dtype or torch.float32,
                        enabled=dtype is not None):
        losses = model.loss(views, samples)
    total = sum(v for k, v in losses.items() if k.startswith('loss'))
    model.zero_grad(set_to_none=True)
    total.backward()
    grads = {n: p.grad.detach().float().cpu()
             for n, p in model.named_parameters() if p.grad is not None}
    return {k: v.detach().float().cpu() for k, v in losses.items()}, grads


@pytest.mark.parametrize('method', sorted(METHODS))
def test_losses_and_gradients_on_cuda_equal_the_cpu(method):
    model, views, samples = METHODS[method]()
    model.train()
    on_gpu = copy.deepcopy(model).cuda()  # same weights, queues, streams
    cpu_losses, cpu_grads = losses_and_grads(model, views, samples,
                                             torch.device('cpu'))
    gpu_losses, gpu_grads = losses_and_grads(on_gpu, views, samples,
                                             torch.device('cuda'))
    assert set(gpu_losses) == set(cpu_losses)
    for k in cpu_losses:
        torch.testing.assert_close(gpu_losses[k], cpu_losses[k], rtol=RTOL,
                                   atol=ATOL, msg=f'{method}: {k}')
    assert any(float(v.abs()) > 1e-3 for k, v in cpu_losses.items()
               if k.startswith('loss')), cpu_losses  # a real loss value
    assert set(gpu_grads) == set(cpu_grads) and cpu_grads
    for n in cpu_grads:
        torch.testing.assert_close(gpu_grads[n], cpu_grads[n], rtol=1e-3,
                                   atol=1e-5, msg=f'{method}: grad of {n}')
    # the queues the step wrote agree too
    for name, buf in model.named_buffers():
        if 'queue' in name and buf.is_floating_point():
            torch.testing.assert_close(dict(on_gpu.named_buffers())[name]
                                       .cpu(), buf, rtol=RTOL, atol=ATOL,
                                       msg=f'{method}: {name}')


# --------------------------------------------------------------------------
# AMP and channels_last
# --------------------------------------------------------------------------
# relative tolerance of the loss: bf16 keeps 8 bits of mantissa, and the
# 1 / tau = 5 of the logits scales its rounding (3.7 % seen on the CPU)
AMP = {'fp16': (torch.float16, 2e-2), 'bf16': (torch.bfloat16, 1e-1)}


@pytest.mark.parametrize('method', ['mocov2', 'densecl'])
@pytest.mark.parametrize('amp', sorted(AMP))
def test_amp_losses_finite_and_close_to_float32(method, amp):
    dtype, rtol = AMP[amp]
    model, views, _ = METHODS[method]()
    model.train()
    fp32 = copy.deepcopy(model).cuda()
    half = copy.deepcopy(model).cuda()
    ref, _ = losses_and_grads(fp32, views, None, torch.device('cuda'))
    got, grads = losses_and_grads(half, views, None, torch.device('cuda'),
                                  dtype=dtype)
    for k in ref:
        assert torch.isfinite(got[k]).all(), (amp, k, got[k])
        torch.testing.assert_close(got[k], ref[k], rtol=rtol, atol=1e-3,
                                   msg=f'{method} {amp}: {k}')
    assert all(torch.isfinite(g).all() for g in grads.values())


@pytest.mark.parametrize('amp', sorted(AMP))
def test_amp_training_steps_stay_finite(amp):
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.structures import DataSample
    dtype, _ = AMP[amp]
    model, views, _ = METHODS['densecl']()
    model.cuda().train().to(memory_format=torch.channels_last)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    wrapper = build_optim_wrapper(model, dict(
        type='AmpOptimWrapper', dtype=dtype,
        optimizer=dict(type='SGD', lr=0.03, momentum=0.9)))
    g = torch.Generator().manual_seed(3)
    data = dict(inputs=[torch.randint(0, 256, (4, 3, 64, 64), generator=g,
                                      dtype=torch.uint8) for _ in range(2)],
                data_samples=[DataSample() for _ in range(4)])
    for _ in range(3):
        log = model.train_step(data, wrapper)
        assert log and all(math.isfinite(float(v)) for v in log.values()), \
            log
    for n, p in model.named_parameters():
        assert torch.isfinite(p).all(), n
    moved = [n for n, p in model.named_parameters()
             if not torch.equal(p.detach(), before[n])]
    if dtype is torch.bfloat16:  # no loss scaler: every step updates
        assert moved
    else:  # fp16: the scaler may skip overflowing steps, never all silently
        assert moved or wrapper.loss_scaler.get_scale() < 2.0 ** 16


@pytest.mark.parametrize('method', ['mocov2', 'densecl'])
def test_channels_last_equals_contiguous(method):
    model, views, _ = METHODS[method]()
    model.train()
    plain = copy.deepcopy(model).cuda()
    last = copy.deepcopy(model).cuda().to(memory_format=torch.channels_last)
    ref, ref_g = losses_and_grads(plain, views, None, torch.device('cuda'))
    got, got_g = losses_and_grads(last, views, None, torch.device('cuda'),
                                  channels_last=True)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=RTOL, atol=ATOL)
    for n in ref_g:
        torch.testing.assert_close(got_g[n], ref_g[n], rtol=1e-3, atol=1e-5)


# --------------------------------------------------------------------------
# SyncBN key encoder in one NCCL process
# --------------------------------------------------------------------------
def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _sync_bn_worker(rank, port, out):
    import torch.distributed as dist
    torch.cuda.set_device(0)
    dist.init_process_group('nccl', init_method=f'tcp://127.0.0.1:{port}',
                            rank=0, world_size=1)
    try:
        torch.backends.cudnn.allow_tf32 = False
        plain, views, _ = _contrastive('mocov2')
        torch.manual_seed(0)
        sync = build_mmmask_model(contrastive_cfg(
            'mmmask', 'mocov2', dict(in_channels=TINY_C5, hid_channels=32,
                                     out_channels=16),
            backbone=tiny_resnet18(), queue_len=32, feat_dim=16,
            key_bn='sync'))
        sync.load_state_dict(plain.state_dict())
        kinds = sorted({type(m).__name__ for m in sync.key_encoder.modules()
                        if 'Norm' in type(m).__name__})
        dev = torch.device('cuda')
        ref, _ = losses_and_grads(plain.cuda().train(), views, None, dev)
        got, _ = losses_and_grads(sync.cuda().train(), views, None, dev)
        with open(out, 'w') as f:
            json.dump(dict(kinds=kinds, ref=float(ref['loss_global']),
                           got=float(got['loss_global'])), f)
    finally:
        dist.destroy_process_group()


def test_sync_bn_key_encoder_in_one_nccl_process(tmp_path):
    import torch.multiprocessing as mp
    out = str(tmp_path / 'sync_bn.json')
    mp.spawn(_sync_bn_worker, args=(_free_port(), out), nprocs=1)
    with open(out) as f:
        res = json.load(f)
    assert res['kinds'] == ['SyncBatchNorm'], res
    assert res['got'] == pytest.approx(res['ref'], rel=RTOL), res


# --------------------------------------------------------------------------
# the device-side view augmentation
# --------------------------------------------------------------------------
def test_view_augmentation_on_cuda_equals_the_cpu():
    import mmmask.models  # noqa: F401
    from mmengine.config import Config
    from mmpretrain.structures import DataSample

    from mmmask.registry import MODELS
    if MODELS.get('ViewAugmentDataPreprocessor') is None:
        pytest.skip('ViewAugmentDataPreprocessor is not registered (the '
                    'device-side view augmentation of issue 14 is not '
                    'merged in this checkout)')
    views_cfg = osp.join(ROOT, 'configs', '_base_', 'datasets',
                         'mocov2_views.py')
    augments = Config.fromfile(views_cfg).view_augments
    cfg = dict(type='ViewAugmentDataPreprocessor',
               mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
               to_rgb=True, input_order='bgr', view_augments=augments)
    cpu = MODELS.build(cfg)
    gpu = copy.deepcopy(cpu).to('cuda')  # same random stream position
    g = torch.Generator().manual_seed(5)
    views = [torch.randint(0, 256, (16, 3, 64, 64), generator=g,
                           dtype=torch.uint8) for _ in range(2)]

    def batch():
        return dict(inputs=[v.clone() for v in views],
                    data_samples=[DataSample() for _ in range(16)])

    torch.manual_seed(0)
    a = cpu(batch(), training=True)['inputs']
    torch.manual_seed(0)
    b = gpu(batch(), training=True)['inputs']
    one_level = 1.0 / 57.0  # one uint8 level after the std of ~57
    for v, (x, y) in enumerate(zip(a, b)):
        assert y.is_cuda
        diff = (y.cpu() - x).abs()
        assert float(diff.max()) <= one_level + 1e-4, (v, float(diff.max()))
        assert float((diff > 1e-3).float().mean()) < 1e-3, v
        assert not torch.allclose(x, (views[v].float().flip(1) - cpu.mean)
                                  / cpu.std)  # it did augment


# --------------------------------------------------------------------------
# NCCL pretraining, then mmdet and mmseg steps on CUDA from its checkpoint
# --------------------------------------------------------------------------
@pytest.fixture(scope='module')
def nccl_checkpoint(pretrained_r50):
    return pretrained_r50('densecl', dist_gpus=1)


def _launch_downstream(lib, tiny, ckpt, tmp_path):
    script = osp.join(ROOT, 'tools', 'benchmarks', lib, 'dist_train.sh')
    work = str(tmp_path / 'work')
    proc = run(['env', f'PYTHON={sys.executable}', 'bash', script, tiny, ckpt,
                '1', '--work-dir', work], timeout=600)
    check_ok(proc)
    with open(tmp_path / 'probe.json') as f:
        probe = json.load(f)
    assert probe['differ'] == [] and probe['backbone'] == 318, probe
    assert_finite_losses(work)
    return proc.stdout + proc.stderr


def test_nccl_pretraining_writes_a_checkpoint(nccl_checkpoint):
    ckpt = torch.load(nccl_checkpoint, map_location='cpu', weights_only=True)
    assert ckpt['meta']['iter'] == 2
    logs = [osp.join(r, d) for r, _, fs in os.walk(osp.dirname(
        nccl_checkpoint)) for d in fs if d.endswith('.log')]
    text = ''.join(open(p).read() for p in logs)
    assert "backend='nccl'" in text or 'backend="nccl"' in text or \
        "'backend': 'nccl'" in text, 'the run did not use NCCL'


def test_mask_rcnn_step_on_cuda(nccl_checkpoint, coco_set, tmp_path):
    from transfer_sets import DET_CONFIGS, write_tiny_det_config
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_det_config(tiny, osp.join(
        DET_CONFIGS, 'mask-rcnn_r50_fpn_syncbn-1x_coco.py'), coco_set,
        str(tmp_path / 'probe.json'), nccl_checkpoint)
    _launch_downstream('mmdetection', tiny, nccl_checkpoint, tmp_path)


def test_fcn_step_on_cuda(nccl_checkpoint, tmp_path):
    from transfer_sets import (SEG_CONFIGS, make_seg_set,
                               write_tiny_seg_config)
    name = 'fcn_r50-d8_4xb4-20k_voc12aug-512x512.py'
    root = str(tmp_path / 'voc')
    make_seg_set(root, name)
    tiny = str(tmp_path / 'tiny.py')
    write_tiny_seg_config(tiny, osp.join(SEG_CONFIGS, name), root,
                          str(tmp_path / 'probe.json'), nccl_checkpoint)
    _launch_downstream('mmsegmentation', tiny, nccl_checkpoint, tmp_path)

