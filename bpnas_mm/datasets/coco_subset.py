"""Make a K-category COCO subset with disjoint, deterministic image splits.

Only images with at least one box of the chosen categories are eligible (an
mmdet training set filters images without boxes anyway, ``filter_empty_gt``);
category ids are remapped to ``1..K`` in the order the categories are given.
Optionally the images are copied (and shrunk, boxes scaled with them) so that
the subset stands on its own.
"""
import json
import os
import os.path as osp
import random
import shutil
from typing import Dict, List, Optional, Sequence

from mmengine.utils import ProgressBar

from ..utils.atomic_write import write_atomic


def load_coco_json(path: str) -> dict:
    """Read a COCO instances json, with clear errors."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'COCO annotation file not found: {path}')
    try:
        with open(path) as f:
            data = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f'{path}: not a valid JSON file ({e})')
    missing = [k for k in ('images', 'annotations', 'categories') if k not in data]
    if missing:
        raise ValueError(f'{path}: not a COCO instances file (missing {missing})')
    return data


def choose_categories(data: dict, names: Optional[Sequence[str]], num: int, seed: int) -> List[dict]:
    """The categories by name (in that order), or ``num`` drawn with ``seed``."""
    by_name = {c['name']: c for c in data['categories']}
    if names:
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f'categories {unknown} are not in the annotation file; it has: '
                             f'{sorted(by_name)}')
        if len(set(names)) != len(names):
            raise ValueError(f'categories repeat: {list(names)}')
        return [by_name[n] for n in names]
    with_boxes = sorted({a['category_id'] for a in data['annotations']})
    if num > len(with_boxes):
        raise ValueError(f'asked for {num} random categories, only {len(with_boxes)} have boxes')
    ids = random.Random(seed).sample(with_boxes, num)
    by_id = {c['id']: c for c in data['categories']}
    return [by_id[i] for i in ids]


def make_coco_subset(ann_file: str, img_dir: Optional[str], out_dir: str,
                     splits: Dict[str, int], categories: Optional[Sequence[str]] = None,
                     num_categories: int = 5, seed: int = 0,
                     licenses: Optional[Sequence[int]] = None, copy_images: bool = False,
                     max_side: Optional[int] = None, verbose: bool = True) -> Dict[str, str]:
    """Write ``out_dir/annotations/instances_<split>.json`` for each split.

    Args:
        ann_file: the source COCO instances json.
        img_dir: the source image folder (needed with ``copy_images``).
        out_dir: where the subset goes.
        splits: split name -> number of images (disjoint, in this order);
            ``None`` takes every remaining eligible image.
        categories: category names, or None for ``num_categories`` random ones.
        seed: seed of the image shuffle and of random categories.
        licenses: keep only images with these license ids.
        copy_images: copy the images to ``out_dir/<split>/``.
        max_side: with ``copy_images``, shrink images (and boxes) to this side.

    Returns:
        split name -> path of its annotation file.
    """
    if max_side is not None and (not copy_images or not isinstance(max_side, int)
                                 or max_side <= 0):
        raise ValueError(f'max_side={max_side!r}: a positive number of pixels, and only with '
                         f'copy_images (the annotations are rescaled with the copied images)')
    data = load_coco_json(ann_file)
    if copy_images and (not img_dir or not osp.isdir(img_dir)):
        raise FileNotFoundError(f'image folder not found: {img_dir}')
    bad = {k: v for k, v in splits.items()
           if v is not None and (not isinstance(v, int) or v <= 0)}
    if not splits or bad:
        raise ValueError(f'splits must map names to positive image counts (or None for all '
                         f'the rest), got {splits}')
    cats = choose_categories(data, categories, num_categories, seed)
    new_id = {c['id']: i + 1 for i, c in enumerate(cats)}
    anns_by_img: Dict[int, list] = {}
    for a in data['annotations']:
        if a['category_id'] in new_id:
            anns_by_img.setdefault(a['image_id'], []).append(a)
    images = [im for im in sorted(data['images'], key=lambda im: im['id'])
              if any(not a.get('iscrowd', 0) for a in anns_by_img.get(im['id'], []))
              and (licenses is None or im.get('license') in licenses)]
    wanted = sum(v for v in splits.values() if v is not None)
    if wanted > len(images) or (None in splits.values() and wanted == len(images)):
        raise ValueError(f'asked for {wanted} images ({splits}), but only {len(images)} images '
                         f'have a box of {[c["name"] for c in cats]}'
                         + (f' with licenses {list(licenses)}' if licenses else ''))
    random.Random(seed).shuffle(images)
    out_cats = [dict(id=new_id[c['id']], name=c['name'],
                     supercategory=c.get('supercategory', '')) for c in cats]
    plan, start = {}, 0
    for split, count in splits.items():
        count = len(images) - start if count is None else count
        plan[split] = sorted(images[start:start + count], key=lambda im: im['id'])
        start += count
    if copy_images:  # every source image must be there before anything is written
        missing = [im['file_name'] for chosen in plan.values() for im in chosen
                   if not osp.isfile(osp.join(img_dir, im['file_name']))]
        if missing:
            raise FileNotFoundError(f'{len(missing)} of the chosen images are not in {img_dir} '
                                    f'(e.g. {missing[:3]}); nothing was written')
    written = {}
    for split, chosen in plan.items():
        out_images, out_anns = [], []
        bar = ProgressBar(len(chosen)) if verbose else None
        for im in chosen:
            scale = 1.0
            im = dict(im)
            if copy_images:
                scale = _copy_image(osp.join(img_dir, im['file_name']),
                                    osp.join(out_dir, split, im['file_name']), max_side)
                im['width'] = int(round(im['width'] * scale))
                im['height'] = int(round(im['height'] * scale))
            out_images.append(im)
            for a in anns_by_img[im['id']]:
                a = dict(a, category_id=new_id[a['category_id']])
                if scale != 1.0:
                    a['bbox'] = [v * scale for v in a['bbox']]
                    a['area'] = a['area'] * scale * scale
                    a.pop('segmentation', None)  # polygons are not rescaled
                out_anns.append(a)
            if bar:
                bar.update()
        info = dict(data.get('info', {}))
        info['description'] = (f'bpnas_mm subset of {osp.basename(ann_file)}: categories '
                               f'{[c["name"] for c in cats]}, split {split!r}, seed {seed}'
                               + (f', images shrunk to <= {max_side} px' if max_side else ''))
        subset = dict(info=info, licenses=data.get('licenses', []), images=out_images,
                      annotations=out_anns, categories=out_cats)
        path = osp.join(out_dir, 'annotations', f'instances_{split}.json')
        _write_json(subset, path)
        written[split] = path
        if verbose:
            print(f'\n{split}: {len(out_images)} images, {len(out_anns)} boxes -> {path}')
    return written


def _copy_image(src: str, dst: str, max_side: Optional[int]) -> float:
    """Copy (and shrink) one image; returns the scale applied to its boxes."""
    if not osp.isfile(src):
        raise FileNotFoundError(f'image not found: {src}')
    os.makedirs(osp.dirname(dst), exist_ok=True)
    if not max_side:
        shutil.copyfile(src, dst)
        return 1.0
    from PIL import Image
    with Image.open(src) as img:
        w, h = img.size
        scale = min(1.0, max_side / max(w, h))
        if scale < 1.0:
            img = img.resize((int(round(w * scale)), int(round(h * scale))), Image.BILINEAR)
        img.convert('RGB').save(dst, quality=90)
    return scale


def _write_json(obj: dict, path: str) -> None:
    write_atomic(path, lambda f: json.dump(obj, f))