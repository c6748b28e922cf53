"""Fill strategies: what a masked pixel becomes (their own small components).

A fill is called on a normalised batch after the mask is drawn::

    view = fill.transform_view(images)       # every view of the method
    filled = fill(view, mask, generator=g)  # mask (N, 1|C, H, W)

``fill.transform_view(x)`` is applied to **every** view of the method
(identity except for the high-pass fill, which filters every view) and
**before** the fill, so that the filled values reach the encoder as drawn
(the saliency authors' order: high-pass, then paste the noise).

Random fills draw from ``generator`` (a ``torch.Generator``; a CPU one,
e.g. from ``StepRandom``, seeds a generator on the images' device, see
:func:`randn_like`); without one, from torch's global state. Registered in
``MASK_GENERATORS`` next to the generators.
"""
from abc import ABCMeta, abstractmethod
from typing import Optional

import torch
import torch.nn.functional as F

from mmmask.registry import MASK_GENERATORS


def gaussian_kernel1d(kernel_size: int, sigma: float,
                      device=None, dtype=torch.float32) -> torch.Tensor:
    """(k,) normalised Gaussian weights."""
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f'kernel_size must be odd and >= 1, got {kernel_size}')
    if sigma <= 0:
        raise ValueError(f'sigma must be > 0, got {sigma}')
    x = torch.arange(kernel_size, device=device, dtype=dtype)
    x = x - (kernel_size - 1) / 2
    w = torch.exp(-0.5 * (x / sigma) ** 2)
    return w / w.sum()


def gaussian_blur(images: torch.Tensor, kernel_size: int,
                  sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) with reflect padding
    (replicate where the image is smaller than the kernel)."""
    n, c, h, w = images.shape
    k = gaussian_kernel1d(kernel_size, sigma, images.device, images.dtype)
    pad = kernel_size // 2
    mode = 'reflect' if pad < min(h, w) else 'replicate'
    x = F.pad(images, (pad, pad, pad, pad), mode=mode)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def randn_like(images: torch.Tensor,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Standard normal noise of ``images``' shape, dtype and device.

    ``generator`` on the images' device draws directly; a generator on
    another device (a CPU stream for CUDA images) gives one 63-bit seed to a
    generator on the images' device, so a large noise field is drawn where
    it is used (reproducible per device type; CPU and CUDA fields differ).
    """
    if generator is None:
        return torch.randn_like(images)
    if generator.device != images.device:
        seed = int(torch.randint(0, 2**63 - 1, (), generator=generator,
                                 device=generator.device))
        generator = torch.Generator(device=images.device).manual_seed(seed)
    return torch.randn(images.shape, generator=generator, dtype=images.dtype,
                       device=images.device)


class BaseMaskFill(metaclass=ABCMeta):
    """``fill(images, mask, generator=None) -> images`` with masked pixels
    replaced (the others are returned unchanged, bit for bit)."""

    @abstractmethod
    def values(self, images: torch.Tensor,
               generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """What masked pixels become, broadcastable to ``images``."""

    def __call__(self, images: torch.Tensor, mask: torch.Tensor,
                 generator: Optional[torch.Generator] = None
                 ) -> torch.Tensor:
        if mask.dim() != 4 or mask.shape[1] not in (1, images.shape[1]):
            raise ValueError(f'mask must be (N, 1 or C, H, W) for images '
                             f'{tuple(images.shape)}, got {tuple(mask.shape)}')
        mask = mask.to(device=images.device, dtype=torch.bool)
        return torch.where(mask, self.values(images, generator), images)

    def transform_view(self, images: torch.Tensor) -> torch.Tensor:
        """Applied to every view (masked or not) before filling."""
        return images

    def __repr__(self) -> str:
        args = ', '.join(f'{k}={v!r}' for k, v in vars(self).items())
        return f'{type(self).__name__}({args})'


@MASK_GENERATORS.register_module()
class MeanFill(BaseMaskFill):
    """Fill with a channel mean.

    Args:
        mode (str): ``'image'``: each image's own per-channel mean (the
            saliency method's ``mean``); ``'dataset'``: the dataset mean,
            i.e. 0 after the data preprocessor's normalisation (MaskCo).
    """

    def __init__(self, mode: str = 'image') -> None:
        if mode not in ('image', 'dataset'):
            raise ValueError(f"MeanFill mode must be 'image' or 'dataset', "
                             f'got {mode!r}')
        self.mode = mode

    def values(self, images, generator=None):
        if self.mode == 'dataset':
            return images.new_zeros(())
        return images.mean(dim=(2, 3), keepdim=True)


@MASK_GENERATORS.register_module()
class NoiseFill(BaseMaskFill):
    """Fill with Gaussian noise N(0, std^2) (in normalised units)."""

    def __init__(self, std: float = 0.18) -> None:
        if std < 0:
            raise ValueError(f'std must be >= 0, got {std}')
        self.std = float(std)

    def values(self, images, generator=None):
        return randn_like(images, generator) * self.std


@MASK_GENERATORS.register_module()
class BlurFill(BaseMaskFill):
    """Copy masked pixels from a Gaussian-blurred image (k 31, sigma 10)."""

    def __init__(self, kernel_size: int = 31, sigma: float = 10.0) -> None:
        gaussian_kernel1d(kernel_size, sigma)  # validates the arguments
        self.kernel_size = int(kernel_size)
        self.sigma = float(sigma)

    def values(self, images, generator=None):
        return gaussian_blur(images, self.kernel_size, self.sigma)


@MASK_GENERATORS.register_module()
class HighPassNoiseFill(NoiseFill):
    """The saliency method's ``hp`` fill (its default).

    Every view is high-pass filtered after normalisation,
    ``transform_view(x) = x - GaussBlur(x; k 11, sigma 5)``; then masked
    pixels of the filtered view get Gaussian noise N(0, 0.18^2), as the
    authors do (the noise is not filtered: unmasked pixels are exactly the
    high-passed image, and no mask boundary leaks into them).
    """

    def __init__(self, std: float = 0.18, kernel_size: int = 11,
                 sigma: float = 5.0) -> None:
        super().__init__(std)
        gaussian_kernel1d(kernel_size, sigma)
        self.kernel_size = int(kernel_size)
        self.sigma = float(sigma)

    def transform_view(self, images: torch.Tensor) -> torch.Tensor:
        return images - gaussian_blur(images, self.kernel_size, self.sigma)


def build_fill(cfg: Optional[dict]) -> Optional[BaseMaskFill]:
    """A fill from its config (None stays None), checked to be a fill."""
    if cfg is None:
        return None
    fill = MASK_GENERATORS.build(cfg)
    if not isinstance(fill, BaseMaskFill):
        raise TypeError(f'{cfg.get("type")!r} is not a mask fill (MeanFill, '
                        'NoiseFill, BlurFill, HighPassNoiseFill, ...)')
    return fill
