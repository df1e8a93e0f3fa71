"""A deterministic random split of one dataset into two parts."""
import copy
from typing import Union

import numpy as np
from torch.utils.data import Dataset

from ..registry import DATASETS


@DATASETS.register_module()
class SplitDataset(Dataset):
    """One part of a seeded random split (paper: 60 % / 40 % of CIFAR-10 train).

    Args:
        dataset (dict | Dataset): the dataset to split (config or object).
        ratio (float): fraction of samples in part ``'first'``, in (0, 1]
            (1.0 with ``max_samples``: a random subset of the whole dataset).
        part (str): ``'first'`` (W step) or ``'second'`` (theta step).
        seed (int): the permutation's seed; both parts must use the same.
        max_samples (int, optional): keep at most this many of the part.
    """

    def __init__(self, dataset: Union[dict, Dataset], ratio: float = 0.6, part: str = 'first',
                 seed: int = 0, max_samples=None):
        if not 0 < ratio <= 1:
            raise ValueError(f'SplitDataset.ratio must be in (0, 1], got {ratio!r}')
        if part not in ('first', 'second'):
            raise ValueError(f"SplitDataset.part must be 'first' or 'second', got {part!r}")
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        n = len(self.dataset)
        order = np.random.default_rng(seed).permutation(n)
        cut = int(round(n * ratio))
        idx = order[:cut] if part == 'first' else order[cut:]
        if max_samples is not None:
            idx = idx[:int(max_samples)]
        if len(idx) == 0:
            raise ValueError(f'SplitDataset: part {part!r} of {n} samples at ratio {ratio} is empty')
        self.indices = np.sort(idx).tolist()
        self.ratio, self.part, self.seed = ratio, part, seed

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(getattr(self.dataset, 'metainfo', {}))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int):
        return self.dataset[self.indices[i]]
