"""tools/dataset_converters/make_imagenet100.py on a tiny fake ImageNet
folder: a few class folders, some of CMC's ImageNet-100 list and some not,
with tiny files named like ImageNet's (the tool reads names, not pixels)."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from helpers import ROOT

TOOL = osp.join(ROOT, 'tools', 'dataset_converters', 'make_imagenet100.py')
CLASS_LIST = osp.join(ROOT, 'tools', 'dataset_converters', 'imagenet100.txt')

IN_LIST = ['n02869837', 'n01558993', 'n02090622']   # of CMC's 100
NOT_IN_LIST = ['n01440764', 'n01443537']             # tench, goldfish


def _wnids(path=CLASS_LIST):
    with open(path) as f:
        return [ln.strip() for ln in f
                if ln.strip() and not ln.startswith('#')]


def _run(*args):
    return subprocess.run([sys.executable, TOOL, *map(str, args)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60)


def _fake_imagenet(root, val='folders'):
    for wnid in IN_LIST + NOT_IN_LIST:
        d = root / 'train' / wnid
        d.mkdir(parents=True)
        for i in range(2):
            (d / f'{wnid}_{i}.JPEG').write_bytes(b'x')
        (d / 'notes.txt').write_text('not an image')
        if val == 'folders':
            v = root / 'val' / wnid
            v.mkdir(parents=True)
            (v / f'ILSVRC2012_val_{wnid}.JPEG').write_bytes(b'x')
    return root


def _lines(path):
    with open(path) as f:
        return [ln.split() for ln in f.read().splitlines()]


def test_class_list_is_cmc_imagenet100():
    wnids = _wnids()
    assert len(wnids) == 100 == len(set(wnids))
    # CMC's file starts and ends with these
    assert wnids[0] == 'n02869837' and wnids[-1] == 'n02090622'
    assert all(len(w) == 9 and w[0] == 'n' and w[1:].isdigit()
               for w in wnids)


def test_missing_classes_are_one_line_error(tmp_path):
    root = _fake_imagenet(tmp_path / 'imagenet')
    proc = _run(root, '--out', tmp_path / 'in100')
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith('make_imagenet100.py: error: 97 of the 100 '
                               'classes'), lines[0]
    assert '--allow-missing' in lines[0]
    assert not (tmp_path / 'in100').exists()


def test_folder_layout_with_symlinks_and_lists(tmp_path):
    root = _fake_imagenet(tmp_path / 'imagenet')
    out = tmp_path / 'in100'
    proc = _run(root, '--out', out, '--allow-missing')
    assert proc.returncode == 0, proc.stderr
    labels = {w: i for i, w in enumerate(sorted(_wnids()))}
    # only the listed classes, each a link to ImageNet's own folder
    assert sorted(os.listdir(out / 'train')) == sorted(IN_LIST)
    for wnid in IN_LIST:
        link = out / 'train' / wnid
        assert link.is_symlink()
        assert osp.samefile(link, root / 'train' / wnid)
    train = _lines(out / 'meta' / 'train.txt')
    assert train == [[f'{w}/{w}_{i}.JPEG', str(labels[w])]
                     for w in IN_LIST for i in range(2)]
    # every line names a file under OUT/train (mmpretrain's ImageNet reads
    # data_root/train/<line>)
    assert all(osp.isfile(out / 'train' / rel) for rel, _ in train)
    val = _lines(out / 'meta' / 'val.txt')
    assert val == [[f'{w}/ILSVRC2012_val_{w}.JPEG', str(labels[w])]
                   for w in IN_LIST]
    assert all(osp.isfile(out / 'val' / rel) for rel, _ in val)
    assert (out / 'meta' / 'classes.txt').read_text().split() == \
        sorted(IN_LIST)
    # running again keeps the same folder
    again = _run(root, '--out', out, '--allow-missing')
    assert again.returncode == 0, again.stderr
    assert _lines(out / 'meta' / 'train.txt') == train


def test_list_only_relative_to_imagenet_train(tmp_path):
    root = _fake_imagenet(tmp_path / 'imagenet', val=None)
    proc = _run(root, '--list-only', '--allow-missing')
    assert proc.returncode == 0, proc.stderr
    lines = _lines(root / 'meta' / 'imagenet100_train.txt')
    assert {rel.split('/')[0] for rel, _ in lines} == set(IN_LIST)
    assert all(osp.isfile(root / 'train' / rel) for rel, _ in lines)
    assert not (root / 'meta' / 'imagenet100_val.txt').exists()
    assert sorted(os.listdir(root / 'meta')) == ['imagenet100_train.txt']


def test_flat_val_needs_the_1000_train_folders(tmp_path):
    root = _fake_imagenet(tmp_path / 'imagenet', val=None)
    (root / 'val').mkdir()
    (root / 'val' / 'ILSVRC2012_val_00000001.JPEG').write_bytes(b'x')
    (root / 'meta').mkdir()
    (root / 'meta' / 'val.txt').write_text('ILSVRC2012_val_00000001.JPEG 0\n')
    proc = _run(root, '--list-only', '--allow-missing')
    assert proc.returncode == 2
    assert 'needs the 1000 class folders' in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_flat_val_maps_imagenet_labels(tmp_path):
    # 1000 empty class folders (ImageNet-1k's label = sorted index), images
    # only in two of them
    root = tmp_path / 'imagenet'
    wnids = sorted(set(_wnids()) | {f'n{9000000 + i:08d}' for i in range(900)})
    assert len(wnids) == 1000
    for w in wnids:
        (root / 'train' / w).mkdir(parents=True)
    for w in IN_LIST[:2]:
        (root / 'train' / w / f'{w}_0.JPEG').write_bytes(b'x')
    (root / 'val').mkdir()
    (root / 'meta').mkdir()
    rows = [(f'ILSVRC2012_val_{i:08d}.JPEG', wnids.index(w))
            for i, w in enumerate([IN_LIST[0], 'n09000001', IN_LIST[1]], 1)]
    for name, _ in rows:
        (root / 'val' / name).write_bytes(b'x')
    (root / 'meta' / 'val.txt').write_text(
        ''.join(f'{n} {lbl}\n' for n, lbl in rows))
    out = tmp_path / 'in100'
    proc = _run(root, '--out', out)
    assert proc.returncode == 0, proc.stderr
    labels = {w: i for i, w in enumerate(sorted(_wnids()))}
    assert _lines(out / 'meta' / 'val.txt') == [
        [rows[0][0], str(labels[IN_LIST[0]])],
        [rows[2][0], str(labels[IN_LIST[1]])]]
    assert sorted(os.listdir(out / 'val')) == [rows[0][0], rows[2][0]]


@pytest.mark.parametrize('content, needle', [
    ('n0123\n', 'is not a WordNet id'),
    ('n01440764\nn01440764\n', 'listed twice'),
    ('# only a comment\n', 'holds no wnid'),
])
def test_bad_class_list(tmp_path, content, needle):
    root = _fake_imagenet(tmp_path / 'imagenet')
    classes = tmp_path / 'classes.txt'
    classes.write_text(content)
    proc = _run(root, '--classes', classes, '--out', tmp_path / 'o')
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
