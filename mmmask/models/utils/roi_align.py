"""RoIAlign as two batched matrix products (fast on the CPU as on CUDA)."""
import torch


def bin_weights(start: torch.Tensor, length: torch.Tensor, output_size: int,
                sampling_ratio: int, size: int) -> torch.Tensor:
    """Bilinear weights of RoIAlign along one axis, averaged per bin.

    Args:
        start, length: (K,) the boxes' start and length along the axis, in
            feature index coordinates (pixel centres at integers).
        output_size: S bins; ``sampling_ratio``: sr points per bin.
        size: the feature map's length along the axis.
    Returns:
        (K, S, size): ``W[k, i, y]`` = mean over the sr points p of bin i
        of the bilinear weight of feature row y at p (torchvision's rule:
        a point beyond ``[-1, size]`` gives 0, else it is clamped to
        ``[0, size - 1]``).
    """
    k = start.shape[0]
    n = output_size * sampling_ratio
    steps = (torch.arange(n, device=start.device, dtype=start.dtype)
             + 0.5) / n  # (S sr,)
    pos = start[:, None] + steps[None] * length[:, None]  # (K, S sr)
    inside = ((pos >= -1) & (pos <= size)).to(pos.dtype)
    pos = pos.clamp(0, size - 1)
    low = pos.floor()
    frac = pos - low
    low = low.long()
    high = (low + 1).clamp(max=size - 1)
    w = pos.new_zeros(k, n, size)
    w.scatter_add_(2, low[..., None], ((1 - frac) * inside)[..., None])
    w.scatter_add_(2, high[..., None], (frac * inside)[..., None])
    return w.view(k, output_size, sampling_ratio, size).mean(2)


def roi_align(feat: torch.Tensor, rois: torch.Tensor, output_size: int,
              spatial_scale: float, sampling_ratio: int = 2,
              aligned: bool = True) -> torch.Tensor:
    """RoIAlign (Mask R-CNN) with a fixed number of sampling points per bin.

    Bilinear sampling is separable and the bin average is linear, so
    ``out[k, c] = Wy[k] @ feat[b_k, c] @ Wx[k]^T`` with the per-bin weights
    ``Wy`` (S, H) and ``Wx`` (S, W) of :func:`bin_weights`: two batched
    matrix products, forward and backward (torchvision's CPU kernel loops
    over RoIs, channels and points). Equal to ``torchvision.ops.roi_align``
    (and mmcv's) with the same ``sampling_ratio``, boxes beyond the map
    included; differentiable w.r.t. ``feat``.

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
    h, w = feat.shape[-2:]
    s, sr = int(output_size), int(sampling_ratio)
    offset = 0.5 if aligned else 0.0
    boxes = rois[:, 1:].to(feat.dtype) * spatial_scale - offset  # (K, 4)
    size = boxes[:, 2:] - boxes[:, :2]  # (K, 2) w, h
    if not aligned:
        size = size.clamp(min=1.0)
    wx = bin_weights(boxes[:, 0], size[:, 0], s, sr, w)  # (K, S, W)
    wy = bin_weights(boxes[:, 1], size[:, 1], s, sr, h)  # (K, S, H)
    maps = feat[rois[:, 0].long()]  # (K, C, H, W)
    cols = torch.matmul(maps, wx.transpose(1, 2)[:, None])  # (K, C, H, S)
    return torch.matmul(wy[:, None], cols)  # (K, C, S, S)
