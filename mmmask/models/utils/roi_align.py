"""RoIAlign as one batched ``grid_sample`` (fast on the CPU as on CUDA)."""
import torch
import torch.nn.functional as F


def roi_align(feat: torch.Tensor, rois: torch.Tensor, output_size: int,
              spatial_scale: float, sampling_ratio: int = 2,
              aligned: bool = True) -> torch.Tensor:
    """RoIAlign (Mask R-CNN) by bilinear sampling and bin averaging.

    Equal to ``torchvision.ops.roi_align`` (and mmcv's) with a fixed
    ``sampling_ratio`` for sampling points inside the map (boxes inside
    their image); samples beyond the border take the border value instead
    of 0. torchvision's CPU kernel loops over RoIs and channels; this is one
    ``grid_sample`` call, differentiable w.r.t. ``feat``.

    Args:
        feat: (N, C, H, W) feature maps.
        rois: (K, 5) rows ``(batch index, x0, y0, x1, y1)`` in image pixels.
        output_size: S of the (S, S) output.
        spatial_scale: feature pixels per image pixel (1 / stride).
        sampling_ratio: sampling points per bin side (> 0).
        aligned: shift boxes by -0.5 feature pixels (pixel-centre model).
    Returns:
        (K, C, S, S).
    """
    if sampling_ratio < 1:
        raise ValueError(f'sampling_ratio must be >= 1, got {sampling_ratio}')
    n, c, h, w = feat.shape
    k = rois.shape[0]
    s, sr = int(output_size), int(sampling_ratio)
    offset = 0.5 if aligned else 0.0
    boxes = rois[:, 1:].to(feat.dtype) * spatial_scale - offset  # (K, 4)
    size = boxes[:, 2:] - boxes[:, :2]  # (K, 2) w, h
    if not aligned:
        size = size.clamp(min=1.0)
    # sample positions along one side, in bins: (i + (j + 0.5) / sr) / S
    steps = (torch.arange(s * sr, device=feat.device, dtype=feat.dtype)
             + 0.5) / (s * sr)  # (S sr,)
    xs = boxes[:, 0:1] + steps[None] * size[:, 0:1]  # (K, S sr) index coords
    ys = boxes[:, 1:2] + steps[None] * size[:, 1:2]
    # grid_sample's normalised coordinates (align_corners=False)
    gx = (xs + 0.5) / w * 2 - 1
    gy = (ys + 0.5) / h * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(k, s * sr, s * sr),
                        gy[:, :, None].expand(k, s * sr, s * sr)], dim=-1)
    maps = feat[rois[:, 0].long()]  # (K, C, H, W)
    sampled = F.grid_sample(maps, grid, mode='bilinear',
                            padding_mode='border', align_corners=False)
    return F.avg_pool2d(sampled, sr) if sr > 1 else sampled
