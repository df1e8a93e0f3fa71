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


class _CountingLoader(DataLoader):
    """A DataLoader that counts how often it is iterated."""
    iterated = 0

    def __iter__(self):
        type(self).iterated += 1
        return super().__iter__()


def test_weights_steps_never_draw_a_search_batch_and_need_no_search_loader():
    runner = mock.MagicMock()
    runner.seed = 5
    seen = []
    runner.model.train_step.side_effect = lambda data, optim_wrapper: seen.append(data)
    loop = BPNASSearchLoop(runner, DataLoader(list(range(4)), batch_size=1),
                           search_dataloader=None, max_epochs=2, steps='weights')
    loop.run_epoch()
    loop.run_epoch()
    assert [d['train'].tolist() for d in seen] == [[0], [1], [2], [3]] * 2
    assert all(d['search'] is None for d in seen)


def test_theta_steps_see_the_full_searchs_search_batches_without_its_training_batches():
    full, seen_full = _loop()
    full.run_epoch()
    full.run_epoch()
    runner = mock.MagicMock()
    runner.seed = 5
    seen = []
    runner.model.train_step.side_effect = lambda data, optim_wrapper: seen.append(
        (data['train'], data['search'].tolist(), torch.rand(1).item()))
    _CountingLoader.iterated = 0
    theta = BPNASSearchLoop(runner, _CountingLoader(list(range(4)), batch_size=1),
                            search_dataloader=DataLoader(list(range(100, 103)), batch_size=1),
                            max_epochs=3, steps='theta')
    theta.run_epoch()
    theta.run_epoch()
    assert _CountingLoader.iterated == 0  # its length only
    assert [t for t, _, _ in seen] == [None] * 8
    assert [s for _, s, _ in seen] == [s for _, s, _ in seen_full]  # same batches, same order


@pytest.mark.parametrize('kwargs,match', [
    (dict(steps='w'), r"train_cfg.steps must be one of \('both', 'weights', 'theta'\)"),
    (dict(steps='theta', warmup_epochs=1), "steps='theta' has no W steps"),
    (dict(steps='theta', search_dataloader=None), 'search_dataloader is needed'),
    (dict(search_dataloader=None), 'search_dataloader is needed'),
])
def test_bad_steps_settings_are_refused(kwargs, match):
    args = dict(search_dataloader=DataLoader([1], batch_size=1), max_epochs=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        BPNASSearchLoop(mock.MagicMock(), DataLoader([0], batch_size=1), **args)
