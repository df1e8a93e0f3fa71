"""Make a K-class subset of an ImageNet-style folder as mmpretrain annotation lists.

Source layout: ``<root>/<split>/<class>/<image>``. Output (no image is copied):
``<out>/meta/<name>.txt`` with lines ``<split>/<class>/<image> <label>`` (paths
relative to ``root``, labels ``0..K-1`` in class order) and
``<out>/meta/classes.txt``, which mmpretrain's ``CustomDataset`` reads
(``data_root=root, ann_file=..., classes=...``). Paper Sec. 4.2: 10 classes,
5,000 train / 5,000 val images drawn for the search.
"""
import os
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence

IMG_EXT = ('.jpg', '.jpeg', '.png', '.bmp', '.webp')


def list_classes(root: str, split: str) -> List[str]:
    folder = osp.join(root, split)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'not an ImageNet-style folder: {folder} does not exist')
    classes = sorted(d for d in os.listdir(folder) if osp.isdir(osp.join(folder, d)))
    if not classes:
        raise ValueError(f'{folder} has no class folders')
    return classes


def make_imagenet_subset(root: str, out_dir: str, splits: Dict[str, int],
                         classes: Optional[Sequence[str]] = None, num_classes: int = 10,
                         seed: int = 0, source_split: str = 'train') -> Dict[str, str]:
    """Write one annotation list per split (disjoint images, balanced per class).

    Args:
        root: dataset root holding ``<source_split>/<class>/``.
        out_dir: where ``meta/`` goes.
        splits: name -> number of images (divided evenly over the classes).
        classes: class folder names, or None for ``num_classes`` drawn with ``seed``.
        seed: seed of the class draw and the image shuffle.
        source_split: the folder the images are drawn from.

    Returns:
        name -> path of the annotation list (plus ``'classes'``).
    """
    available = list_classes(root, source_split)
    if classes:
        unknown = [c for c in classes if c not in available]
        if unknown:
            raise ValueError(f'classes {unknown} are not folders of {osp.join(root, source_split)}'
                             f'; it has {len(available)} classes, e.g. {available[:5]}')
        chosen = list(classes)
    else:
        if num_classes > len(available):
            raise ValueError(f'asked for {num_classes} classes, the folder has {len(available)}')
        chosen = sorted(random.Random(seed).sample(available, num_classes))
    per_class = {}
    for name, count in splits.items():
        if not isinstance(count, int) or count <= 0 or count % len(chosen):
            raise ValueError(f'splits[{name!r}] = {count!r}: must be a positive multiple of the '
                             f'{len(chosen)} classes (images are balanced per class)')
        per_class[name] = count // len(chosen)
    need = sum(per_class.values())
    lists = {name: [] for name in splits}
    rng = random.Random(seed)
    for label, cls in enumerate(chosen):
        folder = osp.join(root, source_split, cls)
        images = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMG_EXT))
        if len(images) < need:
            raise ValueError(f'class {cls!r} has {len(images)} images, the splits need {need} '
                             f'per class ({per_class})')
        rng.shuffle(images)
        start = 0
        for name, n in per_class.items():
            lists[name] += [f'{source_split}/{cls}/{f} {label}' for f in images[start:start + n]]
            start += n
    meta = osp.join(out_dir, 'meta')
    os.makedirs(meta, exist_ok=True)
    written = {}
    for name, lines in lists.items():
        written[name] = _write_lines(osp.join(meta, f'{name}.txt'), sorted(lines))
    written['classes'] = _write_lines(osp.join(meta, 'classes.txt'), chosen)
    return written


def _write_lines(path: str, lines: List[str]) -> str:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.replace(tmp, path)
    return path
