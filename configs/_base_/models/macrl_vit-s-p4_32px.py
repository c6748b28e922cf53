# MACRL model for 32 px images (CIFAR): ViT-S (384 wide, 12 layers, 6 heads)
# with 4 px patches (8 x 8 tokens), a light 2-block 256-wide decoder per
# branch. Every open design choice of docs/methods.md section 5 is an
# argument here, set to mmmask's documented default.
img_size = 32
patch_size = 4
grid = img_size // patch_size
embed_dims = 384

# Split pipeline: the configs set view_augments (one list per view: the
# strong view's MoCo v2 colour ops and flip, the weak view's flip), batched
# on the device; [] = normalisation only (docs/pipeline.md).
data_preprocessor = dict(
    type='ViewAugmentDataPreprocessor', mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255], to_rgb=False,
    input_order='rgb',  # CIFAR arrays are RGB
    view_augments=[])

model = dict(
    type='MACRL',
    queue_len=4096,          # K of each branch's queue
    feat_dim=128,
    temperature=0.2,         # tau
    lambda_rec=1.0,          # L = L_con + lambda_rec * L_rec
    rec_loss='l1',           # L1 on per-patch normalised pixels
    norm_pix=True,
    share_decoder=False,     # one light decoder per branch
    detach_positive=False,   # (online keys only) gradients through both
    momentum=0.99,           # EMA key encoder for positives and the queue
    data_preprocessor=data_preprocessor,
    backbone=dict(type='MaskedViT',
                  arch=dict(embed_dims=embed_dims, num_layers=12,
                            num_heads=6, feedforward_channels=4 * embed_dims),
                  img_size=img_size, patch_size=patch_size),
    strong_mask=dict(type='RandomPatchMask', input_size=grid,
                     mask_ratio=0.75),
    weak_mask=dict(type='RandomPatchMask', input_size=grid, mask_ratio=0.5),
    decoder=dict(type='MaskedTokenDecoder', num_patches=grid * grid,
                 patch_size=patch_size, embed_dim=embed_dims,
                 decoder_embed_dim=256, decoder_depth=2,
                 decoder_num_heads=8),
    projector=dict(type='MLPBNNeck', in_channels=embed_dims,
                   hid_channels=2048, out_channels=128, last_bias=True),
)
