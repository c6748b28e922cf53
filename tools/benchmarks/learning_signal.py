"""Learning signal on real data: does pretraining improve few-shot kNN?

Each method pretrains the same small backbone (mmpretrain's ResNet-18 with
32 base channels, random init from one seed) for the same wall-clock
budget (or step budget) on scikit-learn's digits upsampled to 32 px (a
stratified 70/30 train/test split), then the frozen backbone's pooled C5
features are evaluated by weighted kNN (k=20, T=0.07) on the test split twice:
with all training labels, and with only 5 labelled images per class (the
headline: with all labels even a random network scores about 90 %). Rows:
random init, each self-supervised method, and a supervised upper bound
(cross-entropy on the same backbone).

The views come as the project's split pipeline makes them
(docs/pipeline.md): a ``RandomResizedCrop`` (scale 0.4-1) of the 32 px
images to uint8, then the device stage, ``ViewAugmentDataPreprocessor`` with
the MoCo v2 ``view_augments`` of configs/_base_/datasets/mocov2_views.py
(colour jitter p 0.8, grayscale p 0.2, Gaussian blur p 0.5, flip p 0.5;
MaskCo's regions and mask follow a flip); CMAE's pixel shift and MACRL's
strong / weak views take their per-view op lists from their demo configs.
``--view-ops scaled`` fits those ops to 32 px digits (the blur's sigma times
view size / 224, no flip): the implementation stays, the definition fits
the data.

Each mmmask method's model is ``model`` of its config (configs/demo/*.py;
saliency-guided MoCo v2 and MaskCo, which have none: their recipes) with
the overrides of this small setting (``method_cfg``: backbone, widths,
queue, feature dim, momentum, temperature, the saliency method's masks,
fill and layer); mmpretrain's MoCo v2 / DenseCL are built from their
registry in the same setting.

The default run puts mmmask's and mmpretrain's MoCo v2 and DenseCL side by
side (same data, augmentation, optimiser and wall-clock budget). The other
methods run as groups with ``--methods``: saliency-guided MoCo v2 and MaskCo
with mmmask's MoCo v2 as their reference (by default with as many steps as
that MoCo v2 made, see ``--extension-budget``), and the ViT methods (CMAE,
MACRL), which pretrain a small ViT (4 px patches, AdamW) with their own
random-init and supervised rows.

Budgets: every ResNet method here first loses few-shot accuracy and then
wins it back, so short budgets and single seeds mislead (docs/benchmarks.md,
"The budget"); compare step budgets over several ``--train-seed`` values.

Example (the commands of docs/benchmarks.md; step budgets and one thread
are independent of the machine's load)::

    python tools/benchmarks/learning_signal.py             # 180 s per method
    python tools/benchmarks/learning_signal.py --threads 1 --train-seed 1 \
        --methods mmmask-mocov2 mmmask-densecl --steps 600
    python tools/benchmarks/learning_signal.py --threads 1 --train-seed 1 \
        --view-ops scaled --methods mmmask-mocov2 mmmask-densecl --steps 600
    python tools/benchmarks/learning_signal.py --threads 1 --train-seed 1 \
        --methods mmmask-saliency_mocov2 mmmask-maskco --steps 800 \
        --supervised-budget-s 40
    python tools/benchmarks/learning_signal.py --threads 1 --train-seed 1 \
        --methods mmmask-cmae --steps 194 --supervised-budget-s 40
    python tools/benchmarks/learning_signal.py --budget-s 2 --batch 16 \
        --queue-len 64 --methods mmmask-mocov2               # seconds
"""
import argparse
import math
import os.path as osp
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

METHODS = ('mmmask-mocov2', 'mmpretrain-mocov2', 'mmmask-densecl',
           'mmpretrain-densecl', 'mmmask-saliency_mocov2', 'mmmask-maskco')
# the default run: the two libraries' MoCo v2 and DenseCL side by side in the
# same wall-clock budget (under 15 minutes); the other methods are run as
# groups with --methods (docs/benchmarks.md gives the commands)
DEFAULT_METHODS = METHODS[:4]
# the ViT methods pretrain a small ViT (their own random-init and supervised
# rows)
VIT_METHODS = ('mmmask-cmae', 'mmmask-macrl')
# methods built on mmmask's MoCo v2 whose step does more work (more encoder
# passes, RoIAlign): by default they train for as many steps as mmmask's
# MoCo v2 made in its wall-clock budget (--extension-budget)
MOCO_EXTENSIONS = ('mmmask-saliency_mocov2', 'mmmask-maskco')


def train_seed(args) -> int:
    """The seed of everything a training run draws (not the split)."""
    return args.seed if args.train_seed is None else args.train_seed


def family(name: str) -> str:
    """'vit' for the ViT methods, 'resnet' for the others."""
    return 'vit' if name in VIT_METHODS else 'resnet'


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--methods', nargs='+', default=list(DEFAULT_METHODS),
                   choices=METHODS + VIT_METHODS)
    p.add_argument('--budget-s', type=float, default=180.0,
                   help='wall-clock seconds of pretraining per method')
    p.add_argument('--steps', type=int, default=None,
                   help='a step budget instead of the wall-clock budget')
    p.add_argument('--supervised-budget-s', type=float, default=None,
                   help='the supervised bound\'s budget, also with --steps '
                   '(default: --steps if given, else 40 s for the ResNet, '
                   'which saturates near 99 %%, and --budget-s for the ViT, '
                   'which learns slower)')
    p.add_argument('--extension-budget', default='baseline-steps',
                   choices=['baseline-steps', 'wall-clock'],
                   help='budget of the methods built on MoCo v2 (saliency-'
                   'guided MoCo v2, MaskCo): "baseline-steps" = as many '
                   "steps as mmmask's MoCo v2 made in its wall-clock budget "
                   '(their steps cost 1.3-1.9x more: is their learning '
                   'signal per update there?), "wall-clock" = --budget-s')
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--queue-len', type=int, default=1024)
    p.add_argument('--feat-dim', type=int, default=64)
    p.add_argument('--backbone', default='ResNet',
                   choices=['ResNet', 'ResNet_CIFAR'],
                   help='ResNet: C5 is 1 x 1 at 32 px (the calibration '
                   'setting); ResNet_CIFAR: 4 x 4')
    p.add_argument('--base-channels', type=int, default=32)
    p.add_argument('--view-size', type=int, default=32,
                   help='side of the two views (crops are resized to it)')
    p.add_argument('--view-ops', default='config', choices=['config', 'scaled'],
                   help="config: the device-stage ops of the configs as they "
                   "are (made for 224 px photographs); scaled: the same ops "
                   "with the blur's sigma range scaled by view size / 224 "
                   "and no flip (a digit's mirror image is another shape)")
    p.add_argument('--vit-dims', type=int, default=128,
                   help='ViT methods: width (4 px patches, 8 x 8 tokens)')
    p.add_argument('--vit-layers', type=int, default=4)
    p.add_argument('--vit-lr', type=float, default=1e-3,
                   help='ViT methods: AdamW learning rate')
    p.add_argument('--lr', type=float, default=0.06)
    p.add_argument('--k', type=int, default=20)
    p.add_argument('--temperature', type=float, default=0.07)
    p.add_argument('--shots', type=int, default=5)
    p.add_argument('--shot-draws', type=int, default=10,
                   help='few-shot label subsets averaged')
    p.add_argument('--eval-every', type=int, default=None, metavar='N',
                   help='also evaluate every N steps of pretraining (off '
                   'the clock) and print the learning curves')
    p.add_argument('--threads', type=int, default=None)
    p.add_argument('--seed', type=int, default=0,
                   help='the train/test split and the few-shot draws (and '
                   'the training, unless --train-seed)')
    p.add_argument('--train-seed', type=int, default=None,
                   help='initial weights, batch order, views and in-model '
                   'masks (default: --seed); vary it on a fixed split to '
                   'see how far one run is from the next')
    return p.parse_args(argv)


# --------------------------------------------------------------------------
# data: digits at 32 px, two augmented views per image
# --------------------------------------------------------------------------
def load_digits_32(seed: int):
    """(train_x, train_y, test_x, test_y): uint8 (N, 3, 32, 32) tensors,
    stratified 70/30 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    img = torch.from_numpy(digits.images).float()[:, None] / 16.0  # (N,1,8,8)
    img = F.interpolate(img, size=32, mode='bilinear', align_corners=False)
    img = (img.clamp(0, 1) * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    labels = torch.from_numpy(digits.target)
    tr, te = train_test_split(np.arange(len(labels)), test_size=0.3,
                              stratify=digits.target, random_state=seed)
    return (img[tr].contiguous(), labels[tr], img[te].contiguous(),
            labels[te])


# the project's device stage of the views (docs/pipeline.md): the MoCo v2
# view ops for the ResNet methods and the supervised bounds, each ViT
# method's per-view lists from its demo config
VIEW_CONFIGS = {
    'mocov2': 'configs/_base_/datasets/mocov2_views.py',
    'cmae': 'configs/demo/cmae_vit-tiny_demo.py',
    'macrl': 'configs/demo/macrl_vit-tiny_demo.py',
}
MEAN, STD = 127.5, 64.0  # normalise()


def load_config(path: str):
    """mmengine ``Config`` of a config file under the repository root."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, path))


def view_augments(kind: str, view_ops: str = 'config',
                  size: int = 32) -> list:
    """The device stage's op configs (``BATCH_AUGMENTS``) of a view kind:
    ``'mocov2'``: ``view_augments`` of configs/_base_/datasets/
    mocov2_views.py (one list for every view); ``'cmae'`` / ``'macrl'``:
    the per-view lists of their demo configs' data_preprocessor.
    ``view_ops='scaled'`` (``--view-ops``) fits them to ``size`` px views
    (:func:`scale_ops`)."""
    cfg = load_config(VIEW_CONFIGS[kind])
    ops = (cfg.view_augments if kind == 'mocov2' else
           cfg.model.data_preprocessor.view_augments)
    ops = [[dict(o) for o in v] if isinstance(v, (list, tuple)) else dict(v)
           for v in ops]
    return scale_ops(ops, size / 224) if view_ops == 'scaled' else ops


def scale_ops(ops, factor: float):
    """``ops`` (a list of op configs, or one list per view) for
    ``--view-ops scaled``: blur sigma ranges times ``factor`` (view size /
    224), flips dropped."""
    if ops and isinstance(ops[0], list):
        return [scale_ops(v, factor) for v in ops]
    out = []
    for o in ops:
        if o['type'] == 'BatchRandomFlip':
            continue
        if o['type'] == 'BatchGaussianBlur':
            o = dict(o, sigma_range=tuple(s * factor
                                          for s in o['sigma_range']))
        out.append(o)
    return out


def cmae_shift_cfg() -> tuple:
    """(max_shift, flip prob) of CMAE's ``PixelShiftViews`` in its demo
    config (the flip of the whole crop runs before the shift, on the CPU)."""
    cfg = load_config(VIEW_CONFIGS['cmae'])
    pv = next(t for t in cfg.train_pipeline
              if t['type'] == 'PixelShiftViews')
    flip = next(t for t in pv['base_transforms'] if t['type'] == 'RandomFlip')
    return int(pv['max_shift']), float(flip['prob'])


def view_stage(kind: str = 'mocov2', ops=None, view_ops: str = 'config',
               size: int = 32):
    """A ``ViewAugmentDataPreprocessor`` with the ``view_augments`` of
    ``kind`` (or ``ops``; :func:`view_augments`), on RGB uint8 views,
    normalised as :func:`normalise`."""
    from mmmask.registry import MODELS
    return MODELS.build(dict(
        type='ViewAugmentDataPreprocessor', mean=[MEAN] * 3, std=[STD] * 3,
        to_rgb=False, input_order='rgb',
        view_augments=(view_augments(kind, view_ops, size)
                       if ops is None else ops)))


def single_thread(fn):
    """Run ``fn`` with one intra-op thread: the views' small element-wise
    ops are much faster on one thread than on two on this 2-vCPU machine
    (thread wake-up dominates)."""
    def wrapped(*a, **kw):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*a, **kw)
        finally:
            torch.set_num_threads(threads)
    return wrapped


class DeviceViews:
    """Views as the split pipeline makes them: a crop on the "CPU side",
    the rest by the project's device stage.

    * crop: ``RandomResizedCrop``'s parameter draw (mmpretrain: up to 10
      tries of area ``U[scale] * h * w`` and log-uniform aspect ratio,
      rounded to whole pixels, the first that fits; else the whole image),
      vectorised over the batch, then a bilinear resize of the box to
      ``size`` (RoIAlign with one sample per output pixel: cv2's
      ``INTER_LINEAR`` sampling points), rounded to uint8; ``last_boxes``
      keeps the boxes (n, 4) in input pixels;
    * the device stage: ``ViewAugmentDataPreprocessor`` with ``kind``'s
      ``view_augments`` (:func:`view_stage`; MoCo v2's: colour jitter p 0.8,
      grayscale p 0.2, blur p 0.5, flip p 0.5), which draws its parameters
      from its own seeded stream, updates MaskCo's regions and mask on a
      flip, and normalises.
    """

    def __init__(self, size=32, kind='mocov2', scale=(0.4, 1.0),
                 ratio=(3 / 4, 4 / 3), attempts=10, view_ops='config'):
        self.size, self.kind, self.scale, self.ratio = size, kind, scale, \
            ratio
        self.attempts = attempts
        self.stage = view_stage(kind, view_ops=view_ops, size=size)

    def crop_boxes(self, n: int, h: int, w: int) -> torch.Tensor:
        """(n, 4) float boxes (x0, y0, x1, y1), whole pixels."""
        t = self.attempts
        area = torch.empty(n, t).uniform_(*self.scale) * (h * w)
        ratio = torch.empty(n, t).uniform_(
            math.log(self.ratio[0]), math.log(self.ratio[1])).exp()
        tw = torch.round(torch.sqrt(area * ratio))
        th = torch.round(torch.sqrt(area / ratio))
        ok = (tw > 0) & (tw <= w) & (th > 0) & (th <= h)
        first = ok.to(torch.uint8).argmax(1, keepdim=True)
        found = ok.any(1)
        # the fallback: the whole (square) image, whose ratio 1 is in range
        tw = torch.where(found, tw.gather(1, first).squeeze(1),
                         torch.tensor(float(w)))
        th = torch.where(found, th.gather(1, first).squeeze(1),
                         torch.tensor(float(h)))
        x0 = torch.floor(torch.rand(n) * (w - tw + 1))
        y0 = torch.floor(torch.rand(n) * (h - th + 1))
        return torch.stack([x0, y0, x0 + tw, y0 + th], dim=1)

    def crop(self, x: torch.Tensor, size=None) -> torch.Tensor:
        """uint8 crops (n, 3, size, size) of ``x`` (n, 3, h, w) uint8."""
        from torchvision.ops import roi_align
        n, _, h, w = x.shape
        boxes = self.crop_boxes(n, h, w)
        self.last_boxes = boxes
        rois = torch.cat([torch.arange(n, dtype=torch.float)[:, None],
                          boxes], dim=1)
        out = roi_align(x.float(), rois, size or self.size, spatial_scale=1.0,
                        sampling_ratio=1, aligned=True)
        return out.round_().clamp_(0, 255).to(torch.uint8)

    def augment(self, views, samples=None):
        """The device stage on uint8 views: normalised float views."""
        out = self.stage(dict(inputs=list(views), data_samples=samples),
                         training=True)
        return out['inputs']

    @single_thread
    def one_view(self, batch: torch.Tensor) -> torch.Tensor:
        """One normalised view of the batch (the supervised bound's)."""
        return self.augment([self.crop(batch)])[0]

    @single_thread
    def __call__(self, batch: torch.Tensor, samples_fn=None):
        """Two views of the batch (normalised), and the data samples that
        ``samples_fn(boxes)`` makes from the crop boxes (2, n, 4) before the
        device stage (which mirrors their regions on a flip); ``boxes``
        keeps the boxes."""
        crops, boxes = [], []
        for _ in range(2):
            crops.append(self.crop(batch))
            boxes.append(self.last_boxes)
        self.boxes = torch.stack(boxes)
        samples = samples_fn(self.boxes) if samples_fn else None
        return self.augment(crops, samples), samples


class MACRLViews(DeviceViews):
    """MACRL's asymmetric views as its demo config makes them: two crops,
    then [strong (colour jitter, grayscale, flip), weak (flip only)] on the
    device."""

    def __init__(self, size=32, **kw):
        super().__init__(size, kind='macrl', **kw)


class CMAEViews(DeviceViews):
    """CMAE's pixel-shifted views as ``PixelShiftViews`` in its demo config
    makes them: one crop of side size + max_shift, flipped as a whole with
    p 0.5 (``BatchRandomFlip``, from a generator of the train seed); online =
    its top-left size x size, target = the window shifted by (dh, dw) ~
    U{0..max_shift - 1}; on the device, colour ops on the target only."""

    def __init__(self, size=32, **kw):
        super().__init__(size, kind='cmae', **kw)
        from mmmask.registry import BATCH_AUGMENTS
        self.shift, prob = cmae_shift_cfg()
        self.flip = BATCH_AUGMENTS.build(dict(type='BatchRandomFlip',
                                              prob=prob))
        self.gen = torch.Generator().manual_seed(torch.initial_seed() + 1)

    @single_thread
    def __call__(self, batch: torch.Tensor, samples_fn=None):
        s = self.size
        big = self.flip(self.crop(batch, s + self.shift).float(),
                        self.gen).to(torch.uint8)
        n = len(big)
        d = torch.randint(0, self.shift, (n, 2))
        rows = (d[:, 0, None] + torch.arange(s))[:, None, :, None]
        cols = (d[:, 1, None] + torch.arange(s))[:, None, None, :]
        target = big[torch.arange(n)[:, None, None, None],
                     torch.arange(3)[None, :, None, None], rows, cols]
        online = big[..., :s, :s].contiguous()
        return self.augment([online, target], None), None


def maskco_samples(boxes: torch.Tensor, size: int, rng: np.random.Generator,
                   ori_shape=(32, 32)):
    """MaskCo's data samples for crops ``boxes`` (2, n, 4) resized to
    ``size`` (no flips here): a region in each overlap, in both views'
    pixels, and its mask in the query view (what ``GeometricMultiView`` +
    ``SampleOverlapRegion`` give in a config's pipeline); ``ori_shape``: the
    input images' (h, w)."""
    from mmpretrain.structures import DataSample

    from mmmask.datasets.transforms import ViewGeometry, map_boxes
    from mmmask.datasets.transforms.geometry import map_boxes_from_original
    from mmmask.models.mask_generators import RegionMaskGenerator
    gen = RegionMaskGenerator()
    samples = []
    for q_box, k_box in zip(*boxes.double().numpy()):
        geoms = []
        for x0, y0, x1, y1 in (q_box, k_box):
            sx, sy = size / (x1 - x0), size / (y1 - y0)
            geoms.append(ViewGeometry(
                np.array([[sx, 0, -x0 * sx], [0, sy, -y0 * sy], [0, 0, 1]]),
                ori_shape=tuple(ori_shape), view_shape=(size, size)))
        lo = np.maximum(q_box[:2], k_box[:2])
        hi = np.minimum(q_box[2:], k_box[2:])
        valid = bool((hi > lo).all())
        bounds = (map_boxes_from_original(np.concatenate([lo, hi]), geoms[0])
                  if valid else None)
        out = gen(rng, bounds=bounds, image_size=(size, size))
        ds = DataSample()
        ds.set_field(np.stack([out['box'], map_boxes(out['box'], *geoms)])
                     .astype(np.float32), 'regions')
        ds.set_field(valid, 'region_valid')
        ds.set_mask(out['mask'])
        samples.append(ds)
    return samples


def normalise(x: torch.Tensor) -> torch.Tensor:
    return (x.float() - 127.5) / 64.0


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------
def backbone_cfg(args, kind='resnet'):
    if kind == 'vit':
        d = args.vit_dims
        return dict(type='MaskedViT', img_size=32, patch_size=4,
                    arch=dict(embed_dims=d, num_layers=args.vit_layers,
                              num_heads=4, feedforward_channels=4 * d))
    return dict(type=args.backbone, depth=18, stem_channels=args.base_channels,
                base_channels=args.base_channels, out_indices=(3, ),
                zero_init_residual=False)


def feat_channels(args, kind='resnet'):
    return args.vit_dims if kind == 'vit' else args.base_channels * 8


def pooled(out: torch.Tensor) -> torch.Tensor:
    """(N, C) from a backbone's last output: a map (N, C, h, w) is averaged;
    ViT tokens (N, 1 + L, C) are averaged without the cls token."""
    if out.dim() == 4:
        return out.mean((2, 3))
    if out.dim() == 3:
        return out[:, 1:].mean(1)
    return out


# the config each mmmask method's model is built from (a demo config, or the
# recipe where a method has none), plus the 32 px overrides of method_cfg
METHOD_CONFIGS = {
    'mocov2': 'configs/demo/mocov2_r18_demo.py',
    'densecl': 'configs/demo/densecl_r18_demo.py',
    'saliency_mocov2': 'configs/saliency_mocov2_r50.py',
    'maskco': 'configs/maskco_r50.py',
    'cmae': 'configs/demo/cmae_vit-tiny_demo.py',
    'macrl': 'configs/demo/macrl_vit-tiny_demo.py',
}


def method_cfg(method: str, args) -> dict:
    """The model config of an mmmask method: ``model`` of its config
    (:data:`METHOD_CONFIGS`) with the overrides of this benchmark's setting
    (backbone, widths, queue, feature dim, momentum, temperature; views
    come from :class:`DeviceViews`, so no data preprocessor). Everything
    not overridden here comes from the config."""
    cfg = load_config(METHOD_CONFIGS[method]).model.to_dict()
    cfg.pop('data_preprocessor', None)
    kind = 'vit' if method in ('cmae', 'macrl') else 'resnet'
    c, f = feat_channels(args, kind), args.feat_dim
    cfg['backbone'] = backbone_cfg(args, kind)
    cfg['momentum'] = 0.99  # a short run: a faster key encoder
    if kind == 'resnet':
        cfg.update(queue_len=args.queue_len, feat_dim=f)
        cfg['neck'].update(in_channels=c, hid_channels=c, out_channels=f)
        cfg['head'].update(temperature=0.2)
    if method == 'saliency_mocov2':
        # the masks at 32 px (pixel sizes scaled), the 'mean' fill and
        # saliency from C2: at 32 px the 'hp' filter leaves little of a
        # digit and C5 is 1 x 1 (docs/benchmarks.md, "The masked ResNet
        # methods")
        cfg.update(
            saliency_layer='layer1',
            query_mask=dict(type='SaliencyGridMaskGenerator',
                            base_size=args.view_size),
            hard_negative_mask=dict(type='ForegroundMaskGenerator',
                                    base_size=args.view_size),
            fill=dict(type='MeanFill', mode='image'),
            hard_negative_fill=dict(type='MeanFill', mode='image'))
    elif method == 'maskco':
        cfg['mask_head'].update(in_channels=c)
    elif method == 'cmae':  # decoders of 1 block, 64 wide (the demo's)
        cfg['pixel_decoder'].update(embed_dim=c)
        cfg['feature_decoder'].update(embed_dim=c, predict_feature_dim=c)
        cfg['projector'].update(in_channels=c, hid_channels=4 * c,
                                out_channels=f)
        cfg['predictor'].update(in_channels=f, hid_channels=4 * c,
                                out_channels=f)
    elif method == 'macrl':
        cfg.update(queue_len=args.queue_len, feat_dim=f)
        cfg['decoder'].update(embed_dim=c)
        cfg['projector'].update(in_channels=c, hid_channels=4 * c,
                                out_channels=f)
    return cfg


def mmpretrain_cfg(method: str, args) -> dict:
    """mmpretrain's MoCo v2 / DenseCL in the same setting (mmpretrain
    writes the momentum as 1 - m)."""
    c = feat_channels(args)
    return dict(
        type='MoCo' if method == 'mocov2' else 'DenseCL',
        backbone=backbone_cfg(args), queue_len=args.queue_len,
        feat_dim=args.feat_dim, momentum=0.01,
        neck=dict(type='MoCoV2Neck' if method == 'mocov2' else 'DenseCLNeck',
                  in_channels=c, hid_channels=c, out_channels=args.feat_dim),
        head=dict(type='ContrastiveHead', loss=dict(type='CrossEntropyLoss'),
                  temperature=0.2))


def build_method(name: str, args):
    """The model of ``name`` ('mmmask-mocov2', ...), initialised from the
    train seed."""
    lib, method = name.split('-')
    torch.manual_seed(train_seed(args))
    if lib == 'mmmask':
        from mmmask.registry import MODELS
        model = MODELS.build(method_cfg(method, args))
    else:
        import mmpretrain.models  # noqa: F401
        from mmengine.registry import DefaultScope
        from mmpretrain.registry import MODELS
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            model = MODELS.build(mmpretrain_cfg(method, args))
    model.init_weights()
    return model


def random_backbone(args, kind='resnet'):
    from mmmask.registry import MODELS
    torch.manual_seed(train_seed(args))
    net = MODELS.build(backbone_cfg(args, kind))
    net.init_weights()
    return net


# --------------------------------------------------------------------------
# training and evaluation
# --------------------------------------------------------------------------
def budget_loop(args, budget_s, step_fn, train_x, max_steps=None,
                after_step=None):
    """Run ``step_fn(batch)`` over shuffled batches until the budget ends
    (``max_steps`` steps, else ``budget_s`` seconds); ``after_step(steps)``
    (if given) runs after each step, off the clock.
    Returns (steps, seconds per step)."""
    g = torch.Generator().manual_seed(train_seed(args))
    steps, t0 = 0, time.perf_counter()
    while True:
        perm = torch.randperm(len(train_x), generator=g)
        for i in range(0, len(perm) - args.batch + 1, args.batch):
            step_fn(perm[i:i + args.batch])
            steps += 1
            if after_step is not None:
                paused = time.perf_counter()
                after_step(steps)
                t0 += time.perf_counter() - paused
            elapsed = time.perf_counter() - t0
            done = (steps >= max_steps if max_steps else
                    elapsed >= budget_s)
            if done:
                return steps, elapsed / steps


def pretrain(name, args, data, max_steps=None):
    """Pretrain ``name`` on the training images of ``data``; returns
    (backbone, steps, seconds per step, learning curve). With
    ``--eval-every N`` the curve lists (step, all-label kNN, few-shot kNN)
    every N steps (evaluated off the clock)."""
    train_x = data[0]
    model = build_method(name, args)
    model.train()
    method = name.split('-')[1]
    views = dict(cmae=CMAEViews, macrl=MACRLViews).get(
        method, DeviceViews)(size=args.view_size, view_ops=args.view_ops)
    opt = make_optimizer(model.parameters(), family(name), args)
    rng = np.random.default_rng(train_seed(args))
    np.random.seed(train_seed(args))  # in-model masks (the runner seeds it)
    samples_fn = None
    if method == 'maskco':
        def samples_fn(boxes):
            return maskco_samples(boxes, args.view_size, rng,
                                  train_x.shape[-2:])

    def step(idx):
        inputs, samples = views(train_x[idx], samples_fn)
        samples = samples or []
        losses = model.loss(inputs, samples)
        loss = sum(v for v in losses.values())
        if not torch.isfinite(loss):
            raise FloatingPointError(f'{name}: loss {loss} at a step')
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    curve = []

    def evaluate_every(steps):
        if steps % args.eval_every == 0:
            full, few = evaluate(model.backbone, data, args)
            model.train()
            curve.append((steps, full, few))
            print(f'{name} step {steps}: kNN all labels {full:.1f}, '
                  f'{args.shots}-shot {few:.1f}', flush=True)

    after_step = evaluate_every if args.eval_every else None
    steps, s_per_step = budget_loop(args, args.budget_s, step, train_x,
                                    max_steps, after_step)
    return model.backbone, steps, s_per_step, curve


def make_optimizer(params, kind, args):
    """SGD for the ResNets (MoCo's), AdamW (0.9, 0.95) for the ViTs."""
    if kind == 'vit':
        return torch.optim.AdamW(params, lr=args.vit_lr, betas=(0.9, 0.95),
                                 weight_decay=0.05)
    return torch.optim.SGD(params, lr=args.lr, momentum=0.9,
                           weight_decay=5e-4)


def supervised(args, train_x, train_y, kind='resnet'):
    net = random_backbone(args, kind)
    net.train()
    head = nn.Linear(feat_channels(args, kind), 10)
    views = DeviceViews(size=args.view_size, view_ops=args.view_ops)
    opt = make_optimizer(list(net.parameters()) + list(head.parameters()),
                         kind, args)

    def step(idx):
        x = views.one_view(train_x[idx])
        loss = F.cross_entropy(head(pooled(net(x)[-1])), train_y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    budget = supervised_budget(args, kind)
    steps, s_per_step = budget_loop(args, budget, step, train_x,
                                    supervised_steps(args))
    return net, steps, s_per_step


@torch.no_grad()
def features(backbone, x, batch=256):
    backbone.eval()
    out = [F.normalize(pooled(backbone(normalise(x[i:i + batch]))[-1]),
                       dim=1) for i in range(0, len(x), batch)]
    return torch.cat(out)


def evaluate(backbone, data, args):
    """(all-label kNN top-1 %, mean few-shot kNN top-1 % over draws)."""
    from mmmask.evaluation.knn import knn_accuracy
    train_x, train_y, test_x, test_y = data
    f_tr, f_te = features(backbone, train_x), features(backbone, test_x)

    def acc(idx):
        return knn_accuracy(f_tr[idx], train_y[idx], f_te, test_y,
                            num_classes=10, k=args.k,
                            temperature=args.temperature, topk=(1, ))['top1']

    full = acc(torch.arange(len(train_y)))
    rng = np.random.default_rng(args.seed)
    shots = []
    for _ in range(args.shot_draws):
        idx = np.concatenate([
            rng.choice(np.flatnonzero(train_y.numpy() == c), args.shots,
                       replace=False) for c in range(10)])
        shots.append(acc(torch.from_numpy(idx)))
    return full, statistics.mean(shots)


def supervised_budget(args, kind: str) -> float:
    """Seconds for the supervised bound of a backbone family."""
    if args.supervised_budget_s is not None:
        return args.supervised_budget_s
    return 40.0 if kind == 'resnet' else args.budget_s


def supervised_steps(args):
    """The supervised bound's step budget: ``--steps``, unless its own
    ``--supervised-budget-s`` is given (then that many seconds)."""
    return None if args.supervised_budget_s is not None else args.steps


def budget_text(seconds, max_steps=None) -> str:
    """How a row's training was bounded: '120 s' or '455 steps'."""
    return f'{max_steps} steps' if max_steps else f'{seconds:g} s'


def quiet_logs():
    """Only warnings from mmengine (init_weights logs every tensor)."""
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)


def main(argv=None):
    args = parse_args(argv)
    quiet_logs()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = load_digits_32(args.seed)
    rows = []
    for kind in ('resnet', 'vit'):  # each backbone family with its bounds
        methods = [m for m in args.methods if family(m) == kind]
        if not methods:
            continue
        tag = '' if kind == 'resnet' else ' (ViT)'
        full, few = evaluate(random_backbone(args, kind), data, args)
        base_few = few
        rows.append(dict(name='random init' + tag, steps=0, budget='-',
                         s_per_step=float('nan'), full=full, few=few,
                         gain=0.0))
        moco_steps = None  # mmmask MoCo v2's steps in its budget
        for name in methods:
            max_steps = args.steps
            if (name in MOCO_EXTENSIONS and moco_steps and not args.steps
                    and args.extension_budget == 'baseline-steps'):
                max_steps = moco_steps
            backbone, steps, sps, curve = pretrain(name, args, data,
                                                   max_steps)
            if name == 'mmmask-mocov2':
                moco_steps = steps
            full, few = evaluate(backbone, data, args)
            rows.append(dict(name=name, steps=steps, s_per_step=sps,
                             budget=budget_text(args.budget_s, max_steps),
                             full=full, few=few, gain=few - base_few,
                             curve=[(n, a, f, f - base_few)
                                    for n, a, f in curve]))
        backbone, steps, sps = supervised(args, data[0], data[1], kind)
        full, few = evaluate(backbone, data, args)
        rows.append(dict(name=f'supervised{tag} (upper bound)', steps=steps,
                         budget=budget_text(supervised_budget(args, kind),
                                            supervised_steps(args)),
                         s_per_step=sps, full=full, few=few,
                         gain=few - base_few))

    budget = (f'{args.steps} steps' if args.steps else
              f'{args.budget_s:g} s wall-clock')
    if not args.steps and args.extension_budget == 'baseline-steps':
        budget += (" (the MoCo v2 extensions: mmmask MoCo v2's step count)")
    print(f'\n## learning_signal: digits 32 px, {args.backbone}-18 '
          f'(base {args.base_channels}), batch {args.batch}, queue '
          f'{args.queue_len}, {budget} per method, {torch.get_num_threads()} '
          f'threads, split seed {args.seed}, train seed {train_seed(args)}; '
          f'weighted kNN k={args.k} T={args.temperature}\n')
    print(f'| method | budget | steps | s/step | kNN top-1 all labels | '
          f'kNN top-1 {args.shots}-shot | {args.shots}-shot gain |')
    print('|---|---|---|---|---|---|---|')
    for r in rows:
        sps = '-' if r['steps'] == 0 else f"{r['s_per_step']:.3f}"
        print(f"| {r['name']} | {r['budget']} | {r['steps']} | {sps} | "
              f"{r['full']:.1f} | "
              f"{r['few']:.1f} | {r['gain']:+.1f} |")
    if any(r.get('curve') for r in rows):
        print(f'\nLearning curves (--eval-every {args.eval_every}):\n')
        print(f'| method | step | kNN top-1 all labels | kNN top-1 '
              f'{args.shots}-shot | {args.shots}-shot gain |')
        print('|---|---|---|---|---|')
        for r in rows:
            for n, full, few, gain in r.get('curve', []):
                print(f"| {r['name']} | {n} | {full:.1f} | {few:.1f} | "
                      f"{gain:+.1f} |")
    return rows


if __name__ == '__main__':
    main()
