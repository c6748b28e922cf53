"""mmmask's small built-in set of real training images (no download):
what ``tools/make_demo_data.py`` writes.

Sources, all shipped inside installed packages:

* scikit-image's bundled photographs (``skimage.data``: astronaut, chelsea,
  coffee, rocket, camera, ...). Images that would need a download are skipped;
  the network is blocked while they load, so nothing is fetched or waited on.
* scikit-learn's ``load_sample_images()`` (china, flower).
* scikit-learn's ``load_digits()`` (1,797 real 8x8 handwritten digits),
  upsampled to 64 px, gray -> RGB.

Of the default 1,600 images a quarter are photographs and 1,200 are
digits (``builtin.DEMO_NUM``, ``DEMO_PHOTO_SHARE``): 597 digits stay out
for the probes of ``mmmask.datasets.builtin``. Photographs are cut into
seeded random crops (10-100 % of the image area, aspect 3/4-4/3) resized
to 96 px JPEGs under ``photos/``; digits become 64 px PNGs under
``digits/``. The same ``num`` and ``seed`` always give the
same files. A folder that already holds exactly the expected files is left
alone (``force=True`` rewrites it).
"""
import contextlib
import os
import os.path as osp
import socket
import warnings
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image

from .builtin import DEMO_NUM, demo_photo_count, load_digits_uint8

__all__ = ['make_demo_data']

# scikit-image's loaders whose files ship inside the wheel (others need pooch
# and a download; those fail and are skipped).
# Photographs and micrographs only (no drawings or synthetic images).
SKIMAGE_NAMES = [
    'astronaut', 'chelsea', 'coffee', 'rocket', 'camera', 'coins', 'moon',
    'page', 'text', 'clock', 'brick', 'grass', 'gravel', 'hubble_deep_field',
    'immunohistochemistry', 'retina', 'microaneurysms', 'cell',
    'motorcycle_left', 'cat',
]
PHOTO_SIZE = 96
DIGIT_SIZE = 64
PHOTO_DIR, DIGIT_DIR = 'photos', 'digits'


@contextlib.contextmanager
def no_network():
    """Make every socket connection fail at once (no download, no waiting)."""

    def refuse(*args, **kwargs):
        raise OSError('network disabled by make_demo_data.py')

    saved = socket.socket.connect, socket.create_connection
    socket.socket.connect, socket.create_connection = refuse, refuse
    try:
        yield
    finally:
        socket.socket.connect, socket.create_connection = saved


def to_rgb_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    elif img.dtype != np.uint8:
        img = img.astype(np.float64)
        lo, hi = float(img.min()), float(img.max())
        img = ((img - lo) / max(hi - lo, 1e-8) * 255).round().astype(np.uint8)
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    if img.shape[-1] == 4:  # RGBA -> RGB
        img = img[..., :3]
    return np.ascontiguousarray(img)


def load_photos(verbose: bool = True) -> Dict[str, np.ndarray]:
    """name -> (H, W, 3) uint8 of every bundled photograph that loads."""
    photos: Dict[str, np.ndarray] = {}
    skipped: List[str] = []
    try:
        import skimage.data as skdata
    except ImportError:
        skdata = None
        skipped.append('scikit-image (not installed)')
    if skdata is not None:
        with no_network(), warnings.catch_warnings():
            warnings.simplefilter('ignore')
            for name in SKIMAGE_NAMES:
                fn = getattr(skdata, name, None)
                if fn is None:
                    continue
                try:
                    img = fn()
                    if isinstance(img, tuple):  # e.g. stereo pairs
                        img = img[0]
                    img = to_rgb_uint8(img)
                except Exception:  # needs a download, or fails otherwise
                    skipped.append(name)
                    continue
                if min(img.shape[:2]) >= 64 and not any(
                        img.shape == p.shape and np.array_equal(img, p)
                        for p in photos.values()):  # 'cat' is 'chelsea'
                    photos[name] = img
    try:
        from sklearn.datasets import load_sample_images
        sample = load_sample_images()
        for fname, img in zip(sample.filenames, sample.images):
            photos[osp.splitext(osp.basename(fname))[0]] = to_rgb_uint8(img)
    except Exception as err:  # pragma: no cover - sklearn ships these
        skipped.append(f'sklearn sample images ({err})')
    if verbose and skipped:
        print(f'skipped (not bundled or not loadable): {", ".join(skipped)}')
    return photos


def random_crop(img: np.ndarray, rng: np.random.Generator,
                size: int) -> Image.Image:
    """A random crop of 10-100 % of the area, aspect 3/4-4/3, resized to
    ``size`` x ``size``."""
    h, w = img.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(0.1, 1.0)
        ratio = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
        ch = int(round(np.sqrt(area / ratio)))
        cw = int(round(np.sqrt(area * ratio)))
        if 0 < ch <= h and 0 < cw <= w:
            break
    else:
        ch = cw = min(h, w)
    y = int(rng.integers(0, h - ch + 1))
    x = int(rng.integers(0, w - cw + 1))
    crop = Image.fromarray(img[y:y + ch, x:x + cw])
    return crop.resize((size, size), Image.BICUBIC)


def expected_files(num: int, photo_names: List[str]) -> List[Tuple[str, str]]:
    """(relative path, source) for every file of a set of ``num`` images."""
    n_photo = demo_photo_count(num) if photo_names else 0
    files = []
    for i in range(n_photo):
        name = photo_names[i % len(photo_names)]
        files.append((osp.join(PHOTO_DIR, f'{name}_{i:04d}.jpg'), name))
    for i in range(num - n_photo):
        files.append((osp.join(DIGIT_DIR, f'digit_{i:04d}.png'), 'digits'))
    return files


def existing_files(out: str) -> List[str]:
    found = []
    for sub in (PHOTO_DIR, DIGIT_DIR):
        folder = osp.join(out, sub)
        if osp.isdir(folder):
            found += [osp.join(sub, f) for f in os.listdir(folder)
                      if f.lower().endswith(('.jpg', '.png'))]
    return sorted(found)


def make_demo_data(out: str, num: int = DEMO_NUM, seed: int = 0,
                   force: bool = False, verbose: bool = True) -> List[str]:
    """Write the set into ``out``; returns the relative paths of its files."""
    if num <= 0:
        raise ValueError(f'--num must be positive, got {num}')
    photos = load_photos(verbose)
    names = sorted(photos)
    files = expected_files(num, names)
    wanted = sorted(f for f, _ in files)
    if not force and existing_files(out) == wanted:
        if verbose:
            print(f'{out}: already holds the {num} demo images, nothing to do')
        return wanted
    # Rewrite only the files this script owns.
    for rel in existing_files(out):
        os.remove(osp.join(out, rel))
    for sub in (PHOTO_DIR, DIGIT_DIR):
        os.makedirs(osp.join(out, sub), exist_ok=True)

    rng = np.random.default_rng(seed)
    digits = load_digits_uint8()[0]
    digit_order = rng.permutation(len(digits))
    counts: Dict[str, int] = {}
    n_digit = 0
    for rel, src in files:
        path = osp.join(out, rel)
        if src == 'digits':
            d = digits[digit_order[n_digit % len(digits)]]
            n_digit += 1
            Image.fromarray(d).resize((DIGIT_SIZE, DIGIT_SIZE),
                                      Image.BILINEAR).convert('RGB').save(path)
        else:
            random_crop(photos[src], rng, PHOTO_SIZE).save(path, quality=92)
        counts[src] = counts.get(src, 0) + 1
    if verbose:
        print(f'wrote {len(files)} images to {out}:')
        n_photos = sum(v for k, v in counts.items() if k != 'digits')
        print(f'  {PHOTO_DIR}/: {n_photos} random {PHOTO_SIZE} px JPEG crops '
              f'of {len(names)} photographs ('
              + ', '.join(f'{k} {counts[k]}' for k in names if k in counts)
              + ')')
        print(f'  {DIGIT_DIR}/: {counts.get("digits", 0)} scikit-learn digits '
              f'upsampled to {DIGIT_SIZE} px RGB PNG')
    return wanted
