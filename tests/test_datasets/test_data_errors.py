"""Image loading names the file it fails on."""
import numpy as np
import pytest
from PIL import Image

from mmmask.datasets.transforms import CorruptImageError, LoadImageFromFile


def _real_image(path):
    from sklearn.datasets import load_sample_images
    img = load_sample_images().images[0][:64, :64]
    Image.fromarray(img).save(path, quality=90)
    return img


def test_loads_a_real_image(tmp_path):
    path = tmp_path / 'china.jpg'
    img = _real_image(path)
    out = LoadImageFromFile()(dict(img_path=str(path)))
    assert out['img'].shape == img.shape
    # BGR, as mmcv loads it; JPEG is lossy
    assert np.abs(out['img'][..., ::-1].astype(int) - img).mean() < 8


@pytest.mark.parametrize('damage', ['garbage', 'truncated', 'empty'])
def test_corrupt_image_error_names_the_file(tmp_path, damage):
    path = tmp_path / f'{damage}.jpg'
    _real_image(path)
    data = path.read_bytes()
    if damage == 'garbage':
        path.write_bytes(b'not an image at all' * 10)
    elif damage == 'truncated':
        path.write_bytes(data[:len(data) // 2])
    else:
        path.write_bytes(b'')
    with pytest.raises(CorruptImageError) as info:
        LoadImageFromFile()(dict(img_path=str(path)))
    assert str(path) in str(info.value)


def test_missing_image_names_the_file(tmp_path):
    path = tmp_path / 'nope.png'
    with pytest.raises(FileNotFoundError, match='nope.png'):
        LoadImageFromFile()(dict(img_path=str(path)))
