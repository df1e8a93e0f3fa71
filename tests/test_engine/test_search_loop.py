"""BPNASSearchLoop with a stand-in runner: warm-up, the search loader's cycling,
per-epoch seeds and the warning of a resume inside an epoch."""
import logging
from unittest import mock

import pytest
import torch
from mmengine.logging import MMLogger
from torch.utils.data import DataLoader

from bpnas_mm.engine.search_loop import BPNASSearchLoop, epoch_seed


def _loop(train_items=4, search_items=3, warmup_epochs=0, max_epochs=3):
    runner = mock.MagicMock()
    runner.seed = 5
    seen = []
    runner.model.train_step.side_effect = lambda data, optim_wrapper: seen.append(
        (data['train'].tolist(), None if data['search'] is None else data['search'].tolist(),
         torch.rand(1).item()))
    loop = BPNASSearchLoop(runner, DataLoader(list(range(train_items)), batch_size=1),
                           search_dataloader=DataLoader(list(range(100, 100 + search_items)),
                                                        batch_size=1),
                           max_epochs=max_epochs, warmup_epochs=warmup_epochs)
    return loop, seen


def test_warmup_epochs_train_w_only_then_search_batches_cycle():
    loop, seen = _loop(warmup_epochs=1)
    loop.run_epoch()
    assert [s for _, s, _ in seen] == [None] * 4
    seen.clear()
    loop.run_epoch()  # 4 training batches, a search loader of 3: it restarts
    assert [t for t, _, _ in seen] == [[0], [1], [2], [3]]
    assert [s for _, s, _ in seen] == [[100], [101], [102], [100]]


def test_an_epoch_draws_the_same_numbers_whatever_ran_before():
    first, seen_first = _loop()
    first.run_epoch()
    first.run_epoch()
    second, seen_second = _loop()
    second._epoch, second._iter = 1, 4  # as resumed from epoch_1.pth
    torch.manual_seed(123)  # other state: must not matter
    second.run_epoch()
    assert [r for _, _, r in seen_second] == [r for _, _, r in seen_first[4:]]
    assert epoch_seed(5, 1) != epoch_seed(5, 0)


@pytest.mark.parametrize('resumed_iter,warns', [(4, False), (6, True)])
def test_resume_inside_an_epoch_is_announced(resumed_iter, warns):
    loop, _ = _loop()
    loop._epoch, loop._iter = 1, resumed_iter  # as mmengine's resume sets them
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    try:
        loop.run_epoch()
        loop.run_epoch()  # said once
    finally:
        logger.removeHandler(handler)
    said = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert said == (['resumed at iteration 6, inside epoch 2 (which starts at iteration 4): the '
                     'epoch runs again from its first batch and the search will not repeat an '
                     'uninterrupted one; resume from an epoch checkpoint for that'] if warns
                    else [])
