"""Distributed search on CPU (gloo, 2 processes) steps as one process with the global batch.

The same 8-image batches are run by one process, and split 4 + 4 over two
ranks that start from different weights and different RNG states: after three
path-sampling steps theta, every weight and every quantizer clip agree. A
second check gives one rank an empty input: calibration neither hangs nor
lets that rank's clip differ.
"""
import datetime
import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample
from torch import nn

from bpnas_mm.engine import BPNASDistributedWrapper, BPNASOptimWrapperConstructor
from bpnas_mm.quant.quantizer import Quantizer
from bpnas_mm.registry import MODELS

TINY = Path(__file__).parents[2] / 'configs' / 'bpnas' / 'bpnas_resnet8_tiny_search.py'
STEPS, GLOBAL_BATCH = 3, 8


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _build(seed):
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    model = MODELS.build(dict(Config.fromfile(str(TINY)).model.to_dict(), budget=3.0,
                              search=dict(mode='sample', mu=0.1, theta_init='uniform')))
    optim = BPNASOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9,
                                         weight_decay=5e-3)),
        arch_params=dict(optimizer=dict(type='Adam', lr=0.05, weight_decay=1e-3))))(model)
    model.train()
    for m in model.modules():  # per-rank batch statistics would differ from the global ones
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return model, optim


def _batch(seed, part=slice(None)):
    g = torch.Generator().manual_seed(seed)
    images = [torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8)
              for _ in range(GLOBAL_BATCH)]
    labels = torch.randint(0, 10, (GLOBAL_BATCH,), generator=g).tolist()
    return dict(inputs=images[part], data_samples=[DataSample().set_gt_label(i)
                                                   for i in labels[part]])


def _snapshot(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _search(model, optim, part=slice(None), rank=0):
    """Calibrate on one batch, then three steps; the states after each."""
    model.val_step(_batch(50, part))
    calibrated = _snapshot(model)
    torch.manual_seed(123 + 1000 * rank)  # other ranks' streams differ: rank 0's path counts
    for step in range(STEPS):
        model.train_step(dict(train=_batch(step, part), search=_batch(100 + step, part)), optim)
    return calibrated, _snapshot(model)


def _calibration_data(rank):
    """Rank 0 holds data, rank 1 an empty input (a RoI head without proposals)."""
    g = torch.Generator().manual_seed(7)
    x = torch.randn(6, 4, 3, 3, generator=g)
    return x if rank == 0 else x[:0]


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=120))  # a hang fails
    torch.set_num_threads(1)
    model, optim = _build(seed=rank)  # different init per rank: the wrapper aligns them
    wrapped = BPNASDistributedWrapper(model)
    half = GLOBAL_BATCH // world
    calibrated, state = _search(wrapped.module, optim, slice(rank * half, (rank + 1) * half),
                                rank)
    quant = Quantizer(bits=4, batched=True)
    quant.initialize(_calibration_data(rank))
    torch.save(dict(calibrated=calibrated, state=state, alpha=quant.alpha.detach(), signed=quant.signed,
                    initialized=bool(quant.initialized)), os.path.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


def test_two_ranks_step_as_one_process_with_the_global_batch(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f'rank{r}.pt') for r in range(2)]
    model, optim = _build(seed=0)
    calibrated, single = _search(model, optim)

    for r in ranks:
        for before, after in ((calibrated, r['calibrated']), (single, r['state'])):
            assert set(after) == set(before)
            for k, v in before.items():
                diff = (after[k].float() - v.float()).abs().max().item() if v.numel() else 0
                assert diff <= 2e-5, f'{k}: differs by {diff}'
    theta = [k for k in single if k.startswith('mutator.arch_params.')]
    assert theta
    assert any(not torch.equal(single[k], calibrated[k]) for k in theta)  # theta did move
    # clips of candidates never drawn stay where calibration put them (no weight decay)
    clips = [k for k in single if '_quants.' in k and k.endswith('.alpha')]
    never_drawn = [k for k in clips if torch.equal(single[k], calibrated[k])]
    assert 0 < len(never_drawn) < len(clips)

    reference = Quantizer(bits=4, batched=True)
    reference.initialize(_calibration_data(0))
    for r in ranks:
        assert r['initialized'] and r['signed'] is True
        assert torch.equal(r['alpha'], reference.alpha.detach())
