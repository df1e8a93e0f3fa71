"""The ResNet20 search and retrain configs on the official CIFAR-10 batch layout.

mmpretrain's CIFAR10 checks the md5 of the real files; generated batches
cannot pass that, so the check is patched (the reading code is not).
"""
import os
import pickle

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.runner import Runner

from .conftest import ROOT

BATCHES = ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5',
           'test_batch']


@pytest.fixture
def official(tmp_path, monkeypatch):
    folder = tmp_path / 'cifar-10-batches-py'
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in BATCHES:
        entry = dict(data=rng.integers(0, 256, (8, 3072), dtype=np.uint8),
                     labels=[int(v) for v in rng.integers(0, 10, 8)])
        with open(folder / name, 'wb') as f:
            pickle.dump(entry, f)
    from mmpretrain.datasets import cifar
    monkeypatch.setattr(cifar.CIFAR10, '_check_integrity', lambda self: True)
    return str(tmp_path)


def _tiny(cfg, root, work):
    cfg.work_dir = work
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].batch_size = 4
        cfg[loader].num_workers = 0
        cfg[loader].persistent_workers = False
    cfg.train_dataloader.dataset.dataset.data_root = root
    cfg.val_dataloader.dataset.data_root = root
    cfg.test_dataloader.dataset.data_root = root
    cfg.train_cfg.max_epochs = 1
    cfg.train_cfg.val_interval = 1
    cfg.default_hooks.checkpoint.interval = 1
    cfg.default_hooks.logger.interval = 1
    cfg.default_hooks.checkpoint.save_best = None
    return cfg


def test_search_then_retrain_on_official_batches(official, tmp_path):
    cfg = Config.fromfile(os.path.join(ROOT, 'configs/bpnas/bpnas_resnet20_cifar10_search_b3_official.py'))
    cfg = _tiny(cfg, official, str(tmp_path / 'search'))
    search = cfg.train_cfg.search_dataloader
    search.batch_size, search.num_workers, search.persistent_workers = 4, 0, False
    search.dataset.dataset.data_root = official
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 6  # 24 of 40 images train W at batch 4
    mp_path = os.path.join(cfg.work_dir, 'mixed_precision.json')
    assert os.path.isfile(mp_path)

    cfg = Config.fromfile(os.path.join(ROOT, 'configs/bpnas/bpnas_resnet20_cifar10_retrain_official.py'))
    cfg = _tiny(cfg, official, str(tmp_path / 'retrain'))
    cfg.train_dataloader.dataset.max_samples = 8
    cfg.model.mixed_precision = mp_path
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    metrics = runner.test()
    assert 'accuracy/top1' in metrics
