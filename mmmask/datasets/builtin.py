"""Small labelled evaluation sets built from real images that installed
packages ship (no download): scikit-learn's digits and the photographs
bundled with scikit-image and scikit-learn.

* :func:`held_out_digits`: the digits that ``tools/make_demo_data.py`` leaves
  out of the demo training images, upsampled as it upsamples its own (PIL
  bilinear, gray -> RGB): a classification probe the demo never trains on.
* :func:`make_dense_digits`: a dense-prediction set: real digits composited
  onto random crops of the photographs, with a per-pixel label map
  (0 = background, 1 + d for digit d: 11 classes).

Everything here is deterministic in its ``seed``.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ['DENSE_CLASSES', 'DEMO_NUM', 'DEMO_PHOTO_SHARE',
           'demo_photo_count', 'load_digits_uint8', 'demo_digit_indices',
           'held_out_digits', 'bundled_photos', 'make_dense_digits']

#: class names of :func:`make_dense_digits`' label maps
DENSE_CLASSES = ('background', ) + tuple(f'digit {d}' for d in range(10))

#: images in the demo set that ``tools/make_demo_data.py`` writes by default
DEMO_NUM = 1600
#: the share of photographs in it (400 of 1,600; the other 1,200 are digits,
#: which leaves 597 of scikit-learn's 1,797 digits out for the probes)
DEMO_PHOTO_SHARE = 1 / 4
# photographs of scikit-image that ship inside its wheel
_SKIMAGE_PHOTOS = ('astronaut', 'chelsea', 'coffee', 'rocket', 'camera',
                   'coins', 'brick', 'grass', 'gravel')


def load_digits_uint8() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 digits: (images (N, 8, 8) uint8 0-255, labels
    (N, ) int64)."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = (digits.images / 16.0 * 255).round().astype(np.uint8)
    return images, digits.target.astype(np.int64)


def demo_photo_count(num: int) -> int:
    """How many of a demo set of ``num`` images are photographs (when any
    photograph loads); the rest are digits."""
    return int(round(num * DEMO_PHOTO_SHARE))


def demo_digit_indices(num: int = DEMO_NUM, seed: int = 0,
                       with_photos: bool = True) -> np.ndarray:
    """Indices (into :func:`load_digits_uint8`) of the digits that
    ``tools/make_demo_data.py --num num --seed seed`` writes: its seeded
    permutation's first ``num - demo_photo_count(num)`` entries (all ``num``
    when no photograph loads)."""
    n_total = 1797
    n_photo = demo_photo_count(num) if with_photos else 0
    order = np.random.default_rng(seed).permutation(n_total)
    return order[np.arange(num - n_photo) % n_total]


def upsample_digits(images: np.ndarray, size: int) -> np.ndarray:
    """(N, 8, 8) uint8 -> (N, size, size, 3) uint8, PIL bilinear (as
    ``tools/make_demo_data.py`` writes its digits)."""
    from PIL import Image
    out = np.empty((len(images), size, size, 3), np.uint8)
    for i, d in enumerate(images):
        out[i] = np.asarray(Image.fromarray(d).resize(
            (size, size), Image.BILINEAR).convert('RGB'))
    return out


def held_out_digits(size: int = 64, num: int = DEMO_NUM, seed: int = 0
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """The digits not in the demo set of ``make_demo_data.py --num num
    --seed seed``: (images (M, size, size, 3) uint8 RGB, labels (M, ))."""
    images, labels = load_digits_uint8()
    keep = np.setdiff1d(np.arange(len(labels)),
                        demo_digit_indices(num, seed))
    return upsample_digits(images[keep], size), labels[keep]


def _to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8:
        img = img.astype(np.float64)
        img = (img - img.min()) / max(img.max() - img.min(), 1e-8) * 255
        img = img.round().astype(np.uint8)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def bundled_photos() -> Dict[str, np.ndarray]:
    """name -> (H, W, 3) uint8 RGB: scikit-image's photographs that ship in
    its wheel and scikit-learn's two sample images (those that load)."""
    photos = {}
    try:
        import skimage.data as skdata
        for name in _SKIMAGE_PHOTOS:
            try:
                photos[name] = _to_rgb_uint8(getattr(skdata, name)())
            except Exception:  # not bundled in this version: skip it
                continue
    except ImportError:
        pass
    try:
        from sklearn.datasets import load_sample_images
        sample = load_sample_images()
        for fname, img in zip(sample.filenames, sample.images):
            photos[fname.rsplit('/', 1)[-1].split('.')[0]] = \
                _to_rgb_uint8(img)
    except Exception:
        pass
    if not photos:
        raise RuntimeError('no bundled photograph loads (scikit-image and '
                           'scikit-learn sample images are missing)')
    return photos


def _crop(photo: np.ndarray, rng: np.random.Generator,
          size: int) -> np.ndarray:
    """A random square crop of 5-50 % of the photograph's shorter side
    squared, resized to ``size`` (PIL bicubic)."""
    from PIL import Image
    h, w = photo.shape[:2]
    side = int(min(h, w) * np.sqrt(rng.uniform(0.05, 0.5)))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(photo[y:y + side, x:x + side])
    return np.asarray(crop.resize((size, size), Image.BICUBIC))


def make_dense_digits(num: int, size: int = 96, seed: int = 0,
                      digits_per_image: Tuple[int, int] = (1, 3),
                      digit_size: Tuple[int, int] = (28, 48),
                      digit_indices: Optional[Sequence[int]] = None,
                      photos: Optional[Dict[str, np.ndarray]] = None
                      ) -> Tuple[np.ndarray, np.ndarray]:
    """Real digits composited onto crops of the bundled photographs.

    Each image: a random crop of a photograph (``size`` x ``size``), then
    1-3 digits (drawn from ``digit_indices``, default the digits left out of
    the demo set), each upsampled (bilinear) to a random side in
    ``digit_size`` and pasted at a random place: the digit's intensity
    ``a`` in [0, 1] blends a random ink colour over the photograph,
    ``out = (1 - a) * photo + a * ink``, with the ink far from the local
    background (its complement, jittered). A pixel with ``a > 0.5`` gets the
    label ``1 + digit``; a later digit covers an earlier one.

    Returns:
        images (num, size, size, 3) uint8 RGB, labels (num, size, size)
        uint8 in [0, 10].
    """
    from PIL import Image
    rng = np.random.default_rng(seed)
    photos = bundled_photos() if photos is None else photos
    names = sorted(photos)
    digits, targets = load_digits_uint8()
    if digit_indices is None:
        digit_indices = np.setdiff1d(np.arange(len(targets)),
                                     demo_digit_indices())
    digit_indices = np.asarray(digit_indices)
    images = np.empty((num, size, size, 3), np.uint8)
    labels = np.zeros((num, size, size), np.uint8)
    for i in range(num):
        img = _crop(photos[names[rng.integers(len(names))]], rng,
                    size).astype(np.float32)
        for _ in range(int(rng.integers(digits_per_image[0],
                                        digits_per_image[1] + 1))):
            j = digit_indices[rng.integers(len(digit_indices))]
            side = int(rng.integers(digit_size[0], digit_size[1] + 1))
            side = min(side, size)
            alpha = np.asarray(Image.fromarray(digits[j]).resize(
                (side, side), Image.BILINEAR), np.float32) / 255.0
            y = int(rng.integers(0, size - side + 1))
            x = int(rng.integers(0, size - side + 1))
            patch = img[y:y + side, x:x + side]
            ink = 255.0 - patch.reshape(-1, 3).mean(0)
            ink = np.clip(ink + rng.uniform(-40, 40, 3), 0, 255)
            a = alpha[..., None]
            img[y:y + side, x:x + side] = (1 - a) * patch + a * ink
            region = labels[i, y:y + side, x:x + side]
            region[alpha > 0.5] = 1 + targets[j]
        images[i] = img.round().clip(0, 255).astype(np.uint8)
    return images, labels


def dense_splits(num_train: int, num_val: int, size: int = 96,
                 seed: int = 0) -> List[Tuple[np.ndarray, np.ndarray]]:
    """[(train images, labels), (val images, labels)] of
    :func:`make_dense_digits` with disjoint digit images: the held-out
    digits are split in half (seeded), train composites from one half,
    val from the other."""
    _, targets = load_digits_uint8()
    held = np.setdiff1d(np.arange(len(targets)), demo_digit_indices())
    held = np.random.default_rng(seed).permutation(held)
    half = len(held) // 2
    photos = bundled_photos()
    return [make_dense_digits(num_train, size, seed, digit_indices=held[:half],
                              photos=photos),
            make_dense_digits(num_val, size, seed + 1,
                              digit_indices=held[half:], photos=photos)]
