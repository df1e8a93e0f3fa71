"""The ImageNet class-subset tool on a generated folder."""
import pytest

from bpnas_mm.datasets.imagenet_subset import make_imagenet_subset


@pytest.fixture
def folder(tmp_path):
    for c in range(6):
        d = tmp_path / 'train' / f'n{c:08d}'
        d.mkdir(parents=True)
        for i in range(8):
            (d / f'img{i}.JPEG').write_bytes(b'x')
        (d / 'notes.txt').write_text('not an image')
    return tmp_path


def test_balanced_disjoint_deterministic(folder, tmp_path):
    out = make_imagenet_subset(str(folder), str(tmp_path / 'o'), {'a': 12, 'b': 9},
                               num_classes=3, seed=1)
    a = open(out['a']).read().split('\n')[:-1]
    b = open(out['b']).read().split('\n')[:-1]
    classes = open(out['classes']).read().split()
    assert len(classes) == 3 and len(a) == 12 and len(b) == 9
    assert not {x.split()[0] for x in a} & {x.split()[0] for x in b}
    for lines, per in ((a, 4), (b, 3)):
        labels = [int(x.split()[1]) for x in lines]
        assert sorted(set(labels)) == [0, 1, 2] and all(labels.count(k) == per for k in range(3))
        assert all(x.split()[0].split('/')[1] == classes[int(x.split()[1])] for x in lines)
    again = make_imagenet_subset(str(folder), str(tmp_path / 'o2'), {'a': 12, 'b': 9},
                                 num_classes=3, seed=1)
    assert open(again['a']).read() == open(out['a']).read()


@pytest.mark.parametrize('kwargs,match', [
    (dict(splits={'a': 6}, classes=['nope']), r"classes \['nope'\] are not folders"),
    (dict(splits={'a': 7}, num_classes=2), 'positive multiple of the 2 classes'),
    (dict(splits={'a': 18}, num_classes=2), 'has 8 images, the splits need 9'),
    (dict(splits={'a': 2}, num_classes=9), 'the folder has 6'),
])
def test_bad_requests(folder, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_imagenet_subset(str(folder), str(tmp_path / 'o'), **kwargs)


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match='not an ImageNet-style folder'):
        make_imagenet_subset(str(tmp_path / 'none'), str(tmp_path / 'o'), {'a': 1})
