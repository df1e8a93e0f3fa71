"""Algorithm 1 as an mmengine loop: a training and a search dataloader, zipped."""
import logging
import random
from typing import Dict, Optional, Union

import numpy as np
import torch

from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from torch.utils.data import DataLoader

from ..registry import LOOPS
from ..utils.malloc import ENV as KEEP_MEMORY_ENV
from ..utils.malloc import keep_freed_memory


def epoch_seed(seed: Optional[int], epoch: int) -> int:
    """The global generators' seed at the start of ``epoch`` (0-based).

    >>> epoch_seed(0, 0), epoch_seed(0, 1), epoch_seed(7, 1)
    (1000003, 2000006, 2000013)
    """
    return ((seed or 0) + 1_000_003 * (epoch + 1)) % 2 ** 31


@LOOPS.register_module()
class BPNASSearchLoop(EpochBasedTrainLoop):
    """Epoch-based search: each iteration gets ``dict(train=..., search=...)``.

    The epoch length is the training dataloader's; the search dataloader is
    cycled (restarted when exhausted). During the first ``warmup_epochs``
    only W is trained (``search`` is None), as a supernet warm-up.

    ``steps`` splits Algorithm 1 for one supernet shared by many budgets
    (``tools/search_budgets.py``): ``'weights'`` runs only its W steps (every
    epoch as a warm-up; theta stays where it started and no search loader is
    needed), ``'theta'`` only its theta steps (``train`` is None, W frozen):
    the same number of iterations per epoch, ``len(dataloader)``, and the same
    search samples in the same order as the full search, without loading a
    training batch (random augmentation draws differ: the full search's
    training loader takes its own seed from the global generator).
    ``'both'`` (default) is Algorithm 1. The loop
    turns on :func:`~bpnas_mm.utils.keep_freed_memory` (CPU steps reuse
    freed memory), also when started from mmdet's own ``tools/train.py``.

    Each epoch starts by seeding Python's, NumPy's and torch's global random
    generators from ``(runner.seed, epoch)`` (:func:`epoch_seed`), so what an
    epoch draws (path sampling, augmentation, loader seeds) does not depend
    on what ran before it: a search resumed at an epoch boundary repeats the
    uninterrupted one exactly (validation, model building and calibration in
    between draw from the same generators). Resumed inside an epoch (from an
    iteration checkpoint), it warns: that epoch restarts from its first batch.

    Args:
        runner, dataloader, max_epochs, val_begin, val_interval: as
            :class:`mmengine.runner.EpochBasedTrainLoop`.
        search_dataloader (dict | DataLoader): batches for the theta step.
        warmup_epochs (int): epochs of W-only training first.
        steps (str): ``'both'``, ``'weights'`` or ``'theta'`` (see above).
    """

    STEPS = ('both', 'weights', 'theta')

    def __init__(self, runner, dataloader: Union[DataLoader, Dict],
                 search_dataloader: Union[DataLoader, Dict, None], max_epochs: int,
                 warmup_epochs: int = 0, steps: str = 'both', val_begin: int = 1,
                 val_interval: int = 1, dynamic_intervals=None):
        super().__init__(runner, dataloader, max_epochs, val_begin, val_interval,
                         dynamic_intervals)
        if keep_freed_memory():
            print_log(f'malloc keeps freed memory for reuse ({KEEP_MEMORY_ENV}=0 turns it off)',
                      logger='current')
        if not isinstance(warmup_epochs, int) or not 0 <= warmup_epochs < max_epochs:
            raise ValueError(f'train_cfg.warmup_epochs must be an int in [0, max_epochs), '
                             f'got {warmup_epochs!r}')
        self.warmup_epochs = warmup_epochs
        if steps not in self.STEPS:
            raise ValueError(f'train_cfg.steps must be one of {self.STEPS}, got {steps!r}')
        if steps != 'weights' and search_dataloader is None:
            raise ValueError(f"train_cfg.search_dataloader is needed with steps={steps!r} "
                             f"(only steps='weights' runs without theta steps)")
        if steps == 'theta' and warmup_epochs:
            raise ValueError(f"train_cfg.warmup_epochs={warmup_epochs}: steps='theta' has no "
                             f"W steps to warm up with; use 0")
        self.steps = steps
        if steps == 'weights':
            search_dataloader = None  # never drawn from
        if isinstance(search_dataloader, dict):
            search_dataloader = runner.build_dataloader(search_dataloader,
                                                        seed=runner.seed)
        self.search_dataloader = search_dataloader
        self._search_iter = None
        self._search_pass = 0
        self._checked_start = False

    def _warn_if_mid_epoch(self) -> None:
        """mmengine's epoch loop resumes at epoch boundaries: resumed from a
        checkpoint saved inside an epoch (``CheckpointHook(by_epoch=False)``),
        it trains that epoch again from its first batch. Say so once."""
        if self._checked_start:
            return
        self._checked_start = True
        boundary = self._epoch * len(self.dataloader)
        if self._iter != boundary:
            print_log(f'resumed at iteration {self._iter}, inside epoch {self._epoch + 1} '
                      f'(which starts at iteration {boundary}): the epoch runs again from its '
                      f'first batch and the search will not repeat an uninterrupted one; resume '
                      f'from an epoch checkpoint for that', logger='current',
                      level=logging.WARNING)

    def _next_search_batch(self):
        """Next search batch; its order depends only on (epoch, pass), so a
        run resumed at an epoch boundary sees the same batches."""
        if self._search_iter is None:
            sampler = getattr(self.search_dataloader, 'sampler', None)
            if hasattr(sampler, 'set_epoch'):
                sampler.set_epoch(self._epoch * 1000 + self._search_pass)
            self._search_iter = iter(self.search_dataloader)
        try:
            return next(self._search_iter)
        except StopIteration:
            self._search_pass += 1
            self._search_iter = None
            return self._next_search_batch()

    def run_epoch(self) -> None:
        self._warn_if_mid_epoch()
        seed = epoch_seed(self.runner.seed, self._epoch)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)  # every device's generator
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        searching = self._epoch >= self.warmup_epochs and self.steps != 'weights'
        self._search_iter, self._search_pass = None, 0
        if self.steps == 'theta':  # the full search's iterations, without its training batches
            for idx in range(len(self.dataloader)):
                self.run_iter(idx, dict(train=None, search=self._next_search_batch()))
        else:
            for idx, data_batch in enumerate(self.dataloader):
                search_batch: Optional[dict] = self._next_search_batch() if searching else None
                self.run_iter(idx, dict(train=data_batch, search=search_batch))
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
