"""The COCO subset tool on a generated annotation file."""
import json

import numpy as np
import pytest
from PIL import Image

from bpnas_mm.datasets.coco_subset import make_coco_subset

NAMES = ['person', 'car', 'cup', 'dog', 'chair', 'clock']


@pytest.fixture
def coco(tmp_path):
    """30 images; image i has a box of category (i % 6) + 1; image 29 has none."""
    img_dir = tmp_path / 'images'
    img_dir.mkdir()
    images, anns = [], []
    for i in range(30):
        name = f'{i:04d}.jpg'
        Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(img_dir / name)
        images.append(dict(id=100 + i, file_name=name, width=60, height=40, license=1 + i % 8))
        if i < 29:
            anns.append(dict(id=i, image_id=100 + i, category_id=(i % 6) + 1, iscrowd=0,
                             bbox=[4.0, 4.0, 20.0, 10.0], area=200.0, segmentation=[[]]))
    data = dict(images=images, annotations=anns, licenses=[dict(id=k) for k in range(1, 9)],
                categories=[dict(id=k + 1, name=n, supercategory='x') for k, n in enumerate(NAMES)])
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(data))
    return str(path), str(img_dir)


def test_disjoint_deterministic_remapped(coco, tmp_path):
    ann, img_dir = coco
    out = make_coco_subset(ann, img_dir, str(tmp_path / 'a'), {'train': 6, 'val': 4},
                           categories=['dog', 'person'], verbose=False)
    train = json.load(open(out['train']))
    val = json.load(open(out['val']))
    assert [c['name'] for c in train['categories']] == ['dog', 'person']
    assert [c['id'] for c in train['categories']] == [1, 2]
    ids_train = {im['id'] for im in train['images']}
    ids_val = {im['id'] for im in val['images']}
    assert len(ids_train) == 6 and len(ids_val) == 4 and not ids_train & ids_val
    assert all(a['category_id'] in (1, 2) for a in train['annotations'] + val['annotations'])
    # every image has a box of the chosen categories (image 129 has none anywhere)
    for split in (train, val):
        with_box = {a['image_id'] for a in split['annotations']}
        assert with_box == {im['id'] for im in split['images']}
    again = make_coco_subset(ann, img_dir, str(tmp_path / 'b'), {'train': 6, 'val': 4},
                             categories=['dog', 'person'], verbose=False)
    assert json.load(open(again['train'])) == train


def test_copy_and_shrink_scales_boxes(coco, tmp_path):
    ann, img_dir = coco
    out = make_coco_subset(ann, img_dir, str(tmp_path / 's'), {'train': 3}, categories=['car'],
                           copy_images=True, max_side=30, verbose=False)
    data = json.load(open(out['train']))
    im = data['images'][0]
    assert (im['width'], im['height']) == (30, 20)
    assert Image.open(tmp_path / 's' / 'train' / im['file_name']).size == (30, 20)
    assert data['annotations'][0]['bbox'] == [2.0, 2.0, 10.0, 5.0]


def test_random_categories_and_all(coco, tmp_path):
    ann, img_dir = coco
    out = make_coco_subset(ann, img_dir, str(tmp_path / 'r'), {'a': 2, 'b': None},
                           num_categories=2, seed=3, verbose=False)
    a, b = (json.load(open(out[k])) for k in 'ab')
    assert len(a['categories']) == 2
    assert len(a['images']) + len(b['images']) == 10  # 2 categories x 5 images each


@pytest.mark.parametrize('kwargs,err,match', [
    (dict(splits={'t': 2}, categories=['zebra']), ValueError, r"\['zebra'\] are not in"),
    (dict(splits={'t': 6}, categories=['dog']), ValueError, 'only 5 images have a box'),
    (dict(splits={'t': 0}, categories=['dog']), ValueError, 'positive image counts'),
    (dict(splits={'t': 1}, categories=['dog'], licenses=[99]), ValueError, 'with licenses'),
    (dict(splits={'t': 1}, categories=['dog'], max_side=30), ValueError,
     'max_side=30: .* only with copy_images'),
])
def test_bad_requests(coco, tmp_path, kwargs, err, match):
    ann, img_dir = coco
    with pytest.raises(err, match=match):
        make_coco_subset(ann, img_dir, str(tmp_path / 'x'), verbose=False, **kwargs)
    assert not (tmp_path / 'x').exists()  # nothing half-written


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='COCO annotation file not found'):
        make_coco_subset(str(tmp_path / 'none.json'), None, str(tmp_path / 'o'), {'t': 1})
    bad = tmp_path / 'bad.json'
    bad.write_text('{oops')
    with pytest.raises(ValueError, match='not a valid JSON'):
        make_coco_subset(str(bad), None, str(tmp_path / 'o'), {'t': 1})
    bad.write_text('{"images": []}')
    with pytest.raises(ValueError, match='not a COCO instances file'):
        make_coco_subset(str(bad), None, str(tmp_path / 'o'), {'t': 1})
    bad.write_text('{"images": [], "annotations": [], "categories": []}')
    with pytest.raises(FileNotFoundError, match='image folder not found'):
        make_coco_subset(str(bad), str(tmp_path / 'nope'), str(tmp_path / 'o'), {'t': 1},
                         copy_images=True)


def test_a_missing_source_image_is_found_before_anything_is_copied(coco, tmp_path):
    import os
    ann, img_dir = coco
    os.remove(os.path.join(img_dir, '0003.jpg'))  # image 103: a 'dog' box (3 % 6 + 1 = 4)
    with pytest.raises(FileNotFoundError, match=r"1 of the chosen images .*0003.jpg"):
        make_coco_subset(ann, img_dir, str(tmp_path / 'c'), {'a': 2, 'b': None},
                         categories=['dog'], copy_images=True, verbose=False)
    assert not (tmp_path / 'c').exists()


def test_repeated_split_names_are_refused():
    from bpnas_mm.utils.cli import parse_named_counts
    with pytest.raises(ValueError, match="split 'train' is given twice"):
        parse_named_counts(['train=5', 'val=2', 'train=all'], allow_all=True)
