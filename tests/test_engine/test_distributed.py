"""Distributed search on CPU (gloo, 2 processes): theta stays identical on both ranks."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.set_num_threads(1)
    from tests.test_algorithms.test_bpnas import batch, build

    from bpnas_mm.engine import BPNASDistributedWrapper
    model, optim = build(seed=rank)  # different init per rank: the wrapper must align them
    wrapped = BPNASDistributedWrapper(model)
    model.train()
    for step in range(3):  # different data per rank
        wrapped.train_step(dict(train=batch(10 * rank + step), search=batch(99 + rank + step)),
                           optim)
    theta = torch.cat([p.detach() for p in model.arch_params.parameters()])
    weight = model.architecture.backbone.layer2[0].conv1.weight.detach().flatten()
    torch.save(dict(theta=theta, weight=weight), os.path.join(out_dir, f'rank{rank}.pt'))
    dist.destroy_process_group()


def test_theta_and_weights_identical_on_two_ranks(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / 'rank0.pt')
    r1 = torch.load(tmp_path / 'rank1.pt')
    assert torch.equal(r0['theta'], r1['theta'])
    assert torch.allclose(r0['weight'], r1['weight'], atol=1e-6)
    assert r0['theta'].abs().sum() > 0  # theta did move
