"""ImageNet-100 (or another class subset) from an ImageNet folder in
mmpretrain's layout: what ``tools/dataset_converters/make_imagenet100.py``
writes.

ROOT is ImageNet in mmpretrain's layout: ``train/<wnid>/*.JPEG``, and for
the validation set either ``val/<wnid>/*.JPEG`` or flat ``val/*.JPEG`` with
``meta/val.txt`` (``<file> <label>``, the ImageNet-1k label, i.e. the index
of the wnid among the 1000 sorted train folders).

Default: an ImageNet-100 folder (``configs/saliency_mocov2_r50.py``'s
layout) under ``out``::

    OUT/train/<wnid> -> ROOT/train/<wnid>   (a symlink per class)
    OUT/meta/train.txt                      ('<wnid>/<file> <label>')
    OUT/meta/classes.txt                    (the 100 wnids, sorted)
    OUT/val/...  and OUT/meta/val.txt        (when ImageNet has val)

``list_only``: no folder, only the file lists relative to ImageNet's own
``train/`` (``val/``), as ``configs/macrl_vit-s-p16_in100.py`` reads them:
``META_DIR/imagenet100_train.txt`` (and ``imagenet100_val.txt``), META_DIR
being ``ROOT/meta`` unless ``meta_dir`` says otherwise.

Labels are 0-99, the index of the wnid in the sorted class list (the order
torchvision's ImageFolder gives an ImageNet-100 folder). A class of the list
missing from ``train/`` is an error unless ``allow_missing`` (the lists then
hold the classes present, with the same labels).
"""
import os
import os.path as osp

__all__ = ['ConvertError', 'convert', 'read_class_list']

# mmpretrain's ImageNet.IMG_EXTENSIONS
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif')


class ConvertError(Exception):
    """A problem with the input, reported as one line."""


def read_class_list(path):
    """The wnids of ``path`` in file order (``#`` comments, blank lines
    skipped); duplicates and malformed lines are errors."""
    if not osp.isfile(path):
        raise ConvertError(f'class list not found: {path}')
    wnids = []
    with open(path) as f:
        for num, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            if not (len(line) == 9 and line[0] == 'n' and line[1:].isdigit()):
                raise ConvertError(f'{path}:{num}: {line!r} is not a WordNet '
                                   'id (n followed by 8 digits)')
            if line in wnids:
                raise ConvertError(f'{path}:{num}: {line} is listed twice')
            wnids.append(line)
    if not wnids:
        raise ConvertError(f'class list {path} holds no wnid')
    return wnids


def _images(folder):
    return sorted(name for name in os.listdir(folder)
                  if name.lower().endswith(IMG_EXTENSIONS)
                  and osp.isfile(osp.join(folder, name)))


def _class_dirs(folder):
    return sorted(d for d in os.listdir(folder)
                  if osp.isdir(osp.join(folder, d)))


def foldered_samples(split_dir, classes, labels):
    """``[(wnid, '<wnid>/<file>', label)]`` of the ``classes`` present as
    folders of ``split_dir``, and the list of the absent ones."""
    samples, missing = [], []
    for wnid in classes:
        folder = osp.join(split_dir, wnid)
        if not osp.isdir(folder):
            missing.append(wnid)
            continue
        samples += [(wnid, f'{wnid}/{name}', labels[wnid])
                    for name in _images(folder)]
    return samples, missing


def flat_val_samples(root, classes, labels):
    """``[(wnid, '<file>', label)]`` of flat ``val/*.JPEG`` whose
    ``meta/val.txt`` ImageNet-1k label maps (through the sorted train
    folders) to one of ``classes``."""
    all_wnids = _class_dirs(osp.join(root, 'train'))
    if len(all_wnids) != 1000:
        raise ConvertError(
            f'{root}/val is flat (meta/val.txt): mapping its ImageNet-1k '
            f'labels to wnids needs the 1000 class folders of {root}/train, '
            f'which holds {len(all_wnids)}')
    wanted = set(classes)
    samples = []
    ann = osp.join(root, 'meta', 'val.txt')
    with open(ann) as f:
        for num, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit() or \
                    int(parts[1]) >= 1000:
                raise ConvertError(f'{ann}:{num}: expected "<file> <label '
                                   f'0-999>", got {line.strip()!r}')
            wnid = all_wnids[int(parts[1])]
            if wnid in wanted:
                samples.append((wnid, parts[0], labels[wnid]))
    return samples


def write_list(path, samples):
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.writelines(f'{rel} {label}\n' for _, rel, label in samples)
    os.replace(tmp, path)


def _symlink(target, link):
    """``link`` -> ``target`` (absolute); an existing link to the same
    target is kept, anything else at ``link`` is an error."""
    target = osp.abspath(target)
    if osp.islink(link):
        if osp.realpath(link) == osp.realpath(target):
            return
        raise ConvertError(f'{link} exists and links to '
                           f'{os.readlink(link)}, not {target}')
    if osp.exists(link):
        raise ConvertError(f'{link} exists and is not a symlink')
    os.symlink(target, link)


def convert(root, classes_file, out=None, list_only=False, meta_dir=None,
            allow_missing=False, log=print):
    """Write the ImageNet-100 lists (and folder); returns
    ``{split: number of images}``."""
    train_dir = osp.join(root, 'train')
    if not osp.isdir(train_dir):
        raise ConvertError(f'{train_dir} not found: IMAGENET_ROOT must hold '
                           'train/<wnid>/*.JPEG (mmpretrain\'s layout)')
    classes = read_class_list(classes_file)
    labels = {wnid: i for i, wnid in enumerate(sorted(classes))}

    train, missing = foldered_samples(train_dir, classes, labels)
    if missing and not allow_missing:
        raise ConvertError(
            f'{len(missing)} of the {len(classes)} classes of {classes_file} '
            f'are not folders of {train_dir} (first: '
            f'{", ".join(missing[:5])}); --allow-missing writes the lists of '
            'the classes present')
    if not train:
        raise ConvertError(f'no image of the {len(classes)} classes in '
                           f'{train_dir}')
    present = [w for w in classes if w not in missing]

    val, val_kind = [], None
    val_dir = osp.join(root, 'val')
    if osp.isdir(val_dir):
        if any(osp.isdir(osp.join(val_dir, w)) for w in classes):
            val, _ = foldered_samples(val_dir, present, labels)
            val_kind = 'folders'
        elif osp.isfile(osp.join(root, 'meta', 'val.txt')):
            val = flat_val_samples(root, present, labels)
            val_kind = 'flat'

    counts = {'train': len(train)}
    if val_kind:
        counts['val'] = len(val)
    if list_only:
        meta = meta_dir or osp.join(root, 'meta')
        write_list(osp.join(meta, 'imagenet100_train.txt'), train)
        if val_kind:
            write_list(osp.join(meta, 'imagenet100_val.txt'), val)
        log(f'wrote {meta}/imagenet100_train.txt ({len(train)} images'
            + (f'), imagenet100_val.txt ({len(val)} images' if val_kind
               else '') + f') of {len(present)} classes, relative to '
            f'{root}/train' + ('/val' if val_kind else ''))
        return counts

    out = out or osp.join('data', 'imagenet100')
    os.makedirs(osp.join(out, 'train'), exist_ok=True)
    for wnid in present:
        _symlink(osp.join(train_dir, wnid), osp.join(out, 'train', wnid))
    write_list(osp.join(out, 'meta', 'train.txt'), train)
    with open(osp.join(out, 'meta', 'classes.txt'), 'w') as f:
        f.writelines(f'{w}\n' for w in sorted(present))
    if val_kind == 'folders':
        os.makedirs(osp.join(out, 'val'), exist_ok=True)
        for wnid in present:
            if osp.isdir(osp.join(val_dir, wnid)):
                _symlink(osp.join(val_dir, wnid), osp.join(out, 'val', wnid))
    elif val_kind == 'flat':
        os.makedirs(osp.join(out, 'val'), exist_ok=True)
        for _, name, _ in val:
            _symlink(osp.join(val_dir, name), osp.join(out, 'val', name))
    if val_kind:
        write_list(osp.join(out, 'meta', 'val.txt'), val)
    log(f'wrote {out}: train/ ({len(train)} images of {len(present)} '
        'classes, symlinked)' + (f', val/ ({len(val)} images)' if val_kind
                                 else '') + ', meta/train.txt'
        + (', meta/val.txt' if val_kind else '') + ', meta/classes.txt')
    return counts
