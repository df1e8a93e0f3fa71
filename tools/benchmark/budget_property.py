"""The budget promise as a property run: many short searches, each must end inside B_max.

    python tools/benchmark/budget_property.py [--seeds 0 1 2] [--budgets 5] [--iters 30]
        [--json OUT.json]

Runs seeds x budgets x search modes (composite, sample) x theta starts
(feasible, uniform) short BP-NAS searches (Algorithm 1: a W step and a theta
step per iteration, barrier loss with mu rising linearly from 0.05 to 0.2,
Prob-1) on a small model: a ResNet-8 for CIFAR (3 searched BasicBlocks, 8-bit
stem and fc fixed, the paper's 8 CIFAR candidates, BOPs at 16x16:
configs/bpnas/bpnas_resnet8_tiny_search.py) on random
16x16 images. The budgets are spread evenly from just above the cheapest
configuration to just below the dearest. For each search it records whether
the written file is inside the budget without repair, with repair or
outside, how much of the budget it uses (``avg_bits / B_max``) and whether
any loss was ever non-finite; it prints the counts and the use per mode and
start. Targets: 100 % inside, 0 non-finite, median use >= 0.95.
"""
import argparse
import itertools
import json
import math
import os
import os.path as osp
import statistics
import sys
import time

import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)

import bpnas_mm  # noqa: E402,F401  (registers the plugin)
from bpnas_mm.engine import BPNASOptimWrapperConstructor  # noqa: E402

TINY = osp.join(ROOT, 'configs/bpnas/bpnas_resnet8_tiny_search.py')


def build(budget: float, mode: str, theta_init: str, seed: int):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    model = MODELS.build(dict(Config.fromfile(TINY).model.to_dict(), budget=budget,
                              search=dict(mode=mode, theta_init=theta_init, mu=0.05)))
    optim = BPNASOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        arch_params=dict(optimizer=dict(type='Adam', lr=0.05, weight_decay=1e-3))))(model)
    return model, optim


def batch(g: torch.Generator, n: int = 8) -> dict:
    from mmpretrain.structures import DataSample
    return dict(inputs=[torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8)
                        for _ in range(n)],
                data_samples=[DataSample().set_gt_label(int(i))
                              for i in torch.randint(0, 10, (n,), generator=g)])


def search(budget: float, mode: str, theta_init: str, seed: int, iters: int) -> dict:
    model, optim = build(budget, mode, theta_init, seed)
    model.train()
    g = torch.Generator().manual_seed(seed)
    finite = True
    for step in range(iters):
        model.mu = 0.05 + 0.15 * step / max(iters - 1, 1)  # BarrierMuHook's linear schedule
        logs = model.train_step(dict(train=batch(g), search=batch(g)), optim)
        finite &= all(math.isfinite(float(torch.as_tensor(v).detach())) for v in logs.values())
    mp = model.export()
    avg_bits = mp.extra['avg_bits']
    inside = avg_bits <= budget + 1e-9
    return dict(seed=seed, budget=budget, mode=mode, theta_init=theta_init,
                avg_bits=avg_bits, use=avg_bits / budget, repaired=bool(mp.extra['repaired']),
                inside=inside, finite=finite,
                outcome='outside' if not inside else
                ('inside, repaired' if mp.extra['repaired'] else 'inside'))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--budgets', type=int, default=5, help='budgets across the reachable range')
    p.add_argument('--iters', type=int, default=30, help='iterations per search')
    p.add_argument('--json', help='also write every search\'s record here')
    args = p.parse_args()
    if args.budgets < 1 or args.iters < 1:
        raise SystemExit('--budgets and --iters must be >= 1')
    lo, hi = build(3.0, 'composite', 'uniform', 0)[0].space.bits_range()
    span = hi - lo
    budgets = [round(lo + span * (0.01 + 0.98 * i / max(args.budgets - 1, 1)), 4)
               for i in range(args.budgets)]
    runs = list(itertools.product(args.seeds, budgets, ('composite', 'sample'),
                                  ('feasible', 'uniform')))
    print(f'[budget_property] reachable {lo:.4f}..{hi:.4f} bits; budgets {budgets}; '
          f'{len(runs)} searches of {args.iters} iterations', flush=True)
    records, t0 = [], time.time()
    for i, (seed, budget, mode, start) in enumerate(runs, 1):
        records.append(search(budget, mode, start, seed, args.iters))
        r = records[-1]
        eta = (time.time() - t0) / i * (len(runs) - i)
        print(f'[{i}/{len(runs)}, eta {eta:.0f} s] seed {seed} B_max {budget} {mode}/{start}: '
              f'{r["avg_bits"]:.4f} bits ({r["use"]:.3f} of B_max), {r["outcome"]}'
              f'{"" if r["finite"] else ", NON-FINITE LOSS"}', flush=True)
    print(f'\n{"mode / start":22s} {"searches":>8s} {"inside":>7s} {"repaired":>8s} '
          f'{"outside":>7s} {"non-finite":>10s} {"median use":>10s} {"min use":>8s}')
    groups = [('all', records)] + [
        (f'{m} / {s}', [r for r in records if r['mode'] == m and r['theta_init'] == s])
        for m in ('composite', 'sample') for s in ('feasible', 'uniform')]
    for name, rs in groups:
        uses = [r['use'] for r in rs]
        print(f'{name:22s} {len(rs):8d} {sum(r["outcome"] == "inside" for r in rs):7d} '
              f'{sum(r["outcome"] == "inside, repaired" for r in rs):8d} '
              f'{sum(not r["inside"] for r in rs):7d} {sum(not r["finite"] for r in rs):10d} '
              f'{statistics.median(uses):10.3f} {min(uses):8.3f}')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(records, f, indent=1)


if __name__ == '__main__':
    main()
