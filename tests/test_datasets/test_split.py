"""The seeded train/search split."""
import pytest

from bpnas_mm.datasets import SplitDataset


class Numbers:
    metainfo = dict(classes=('a', 'b'))

    def __len__(self):
        return 100

    def __getitem__(self, i):
        return i


def test_parts_are_disjoint_cover_and_deterministic():
    first = SplitDataset(Numbers(), ratio=0.6, part='first', seed=1)
    second = SplitDataset(Numbers(), ratio=0.6, part='second', seed=1)
    a, b = set(first[i] for i in range(len(first))), set(second[i] for i in range(len(second)))
    assert len(a) == 60 and len(b) == 40 and not a & b and a | b == set(range(100))
    assert SplitDataset(Numbers(), 0.6, 'first', seed=1).indices == first.indices
    assert SplitDataset(Numbers(), 0.6, 'first', seed=2).indices != first.indices
    assert first.indices != list(range(60))  # random, not the first 60 (class-sorted folders)
    assert first.metainfo == dict(classes=('a', 'b'))
    assert len(SplitDataset(Numbers(), 0.6, 'second', max_samples=7)) == 7


@pytest.mark.parametrize('kwargs,match', [(dict(ratio=1.5), 'ratio must be in'),
                                          (dict(ratio=1.0, part='second'), 'is empty'),
                                          (dict(part='third'), "part must be 'first'")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SplitDataset(Numbers(), **kwargs)
