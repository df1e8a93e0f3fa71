"""The budget promise as a property run: many short searches, each must end inside B_max.

    python tools/benchmark/budget_property.py [--seeds 0 1 2] [--budgets 5] [--iters 30]
        [--json OUT.json] [--cifar-root ../shared/data/cifar10 [--weights R20.th]]

Runs seeds x budgets x search modes (composite, sample) x theta starts
(feasible, uniform) short BP-NAS searches (Algorithm 1: a W step and a theta
step per iteration, barrier loss with mu rising linearly from 0.05 to 0.2,
Prob-1) on a small model: a ResNet-8 for CIFAR (3 searched BasicBlocks, 8-bit
stem and fc fixed, the paper's 8 CIFAR candidates, BOPs at 16x16:
configs/bpnas/bpnas_resnet8_tiny_search.py) on random
16x16 images, or with ``--cifar-root`` the converted public ResNet20
(configs/bpnas/bpnas_resnet20_cifar10_search_b3.py) on real CIFAR-10 training
images, where the task loss pays for bits. The budgets are spread evenly from just above the cheapest
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
from bpnas_mm.utils.atomic_write import write_atomic  # noqa: E402

TINY = osp.join(ROOT, 'configs/bpnas/bpnas_resnet8_tiny_search.py')
R20 = osp.join(ROOT, 'configs/bpnas/bpnas_resnet20_cifar10_search_b3.py')


class RandomData:
    """Random 16x16 images and labels: a task loss that gains nothing from bits."""
    config, size = TINY, 16

    def __init__(self, args):
        pass

    def prepare(self, model):
        pass

    def batches(self, seed: int, n: int):
        """(W-step batch, theta-step batch) pairs, from one stream."""
        from mmpretrain.structures import DataSample
        g = torch.Generator().manual_seed(seed)

        def one():
            return dict(inputs=[torch.randint(0, 256, (3, self.size, self.size), generator=g,
                                              dtype=torch.uint8) for _ in range(n)],
                        data_samples=[DataSample().set_gt_label(int(i))
                                      for i in torch.randint(0, 10, (n,), generator=g)])
        while True:
            yield one(), one()


class CifarData:
    """The converted public ResNet20 on real CIFAR-10 training images (a fixed
    pool, read once, no augmentation): a task loss that pays for bits."""
    config = R20

    def __init__(self, args):
        import mmcv
        from bpnas_mm.models.convert import convert_resnet_cifar
        from bpnas_mm.utils.user_files import read_state_dict
        self.weights = convert_resnet_cifar(read_state_dict(args.weights, '--weights'))
        root = osp.join(args.cifar_root, 'train')
        classes = sorted(os.listdir(root))
        files = [(osp.join(root, c, f), label) for label, c in enumerate(classes)
                 for f in sorted(os.listdir(osp.join(root, c)))]
        pick = torch.randperm(len(files), generator=torch.Generator().manual_seed(0))
        files = [files[int(i)] for i in pick[:args.pool]]
        self.images = torch.stack([torch.from_numpy(mmcv.imread(f)).permute(2, 0, 1).contiguous()
                                   for f, _ in files])  # BGR uint8, as LoadImageFromFile
        self.labels = [label for _, label in files]

    def prepare(self, model):
        from bpnas_mm.utils.user_files import load_fitting
        load_fitting(model.architecture, self.weights, '--weights', '--weights',
                     ignore_missing=('alpha', 'initialized', 'signed_code'))

    def batches(self, seed: int, n: int):
        """(W-step batch, theta-step batch) pairs: W from the pool's first 60 %, theta
        from the rest, as the search configs split the training set."""
        from mmpretrain.structures import DataSample
        g = torch.Generator().manual_seed(seed)
        cut = int(0.6 * len(self.labels))

        def one(lo, hi):
            idx = torch.randint(lo, hi, (n,), generator=g).tolist()
            return dict(inputs=[self.images[i] for i in idx],
                        data_samples=[DataSample().set_gt_label(self.labels[i]) for i in idx])
        while True:
            yield one(0, cut), one(cut, len(self.labels))


def build(data, budget: float, mode: str, theta_init: str, seed: int):
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    model = MODELS.build(dict(Config.fromfile(data.config).model.to_dict(), budget=budget,
                              search=dict(mode=mode, theta_init=theta_init, mu=0.05)))
    data.prepare(model)
    optim = BPNASOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        arch_params=dict(optimizer=dict(type='Adam', lr=0.05, weight_decay=1e-3))))(model)
    return model, optim


def search(data, budget: float, mode: str, theta_init: str, seed: int, iters: int,
           batch_size: int) -> dict:
    model, optim = build(data, budget, mode, theta_init, seed)
    model.train()
    batches = data.batches(seed, batch_size)
    finite = True
    for step in range(iters):
        model.set_mu(0.05 + 0.15 * step / max(iters - 1, 1))  # BarrierMuHook's linear schedule
        w_batch, theta_batch = next(batches)
        logs = model.train_step(dict(train=w_batch, search=theta_batch), optim)
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
    p.add_argument('--cifar-root', help='real data: the converted public ResNet20 (see '
                   '--weights) searched on CIFAR-10 training images from this folder '
                   '(../shared/data/cifar10) instead of the ResNet-8 on random images')
    p.add_argument('--weights', default=osp.join(ROOT, '..', 'shared', 'weights',
                                                 'resnet20-12fca82f.th'),
                   help='public CIFAR ResNet20 checkpoint (with --cifar-root)')
    p.add_argument('--pool', type=int, default=4096, help='real images read (with --cifar-root)')
    p.add_argument('--batch', type=int, default=None,
                   help='images per W and per theta step (default 8, 64 with --cifar-root)')
    args = p.parse_args()
    if args.budgets < 1 or args.iters < 1 or args.pool < 1:
        raise SystemExit('--budgets, --iters and --pool must be >= 1')
    data = CifarData(args) if args.cifar_root else RandomData(args)
    batch_size = args.batch or (64 if args.cifar_root else 8)
    lo, hi = build(data, 3.0, 'composite', 'uniform', 0)[0].space.bits_range()
    span = hi - lo
    budgets = [round(lo + span * (0.01 + 0.98 * i / max(args.budgets - 1, 1)), 4)
               for i in range(args.budgets)]
    runs = list(itertools.product(args.seeds, budgets, ('composite', 'sample'),
                                  ('feasible', 'uniform')))
    print(f'[budget_property] reachable {lo:.4f}..{hi:.4f} bits; budgets {budgets}; '
          f'{len(runs)} searches of {args.iters} iterations', flush=True)
    records, t0 = [], time.time()
    for i, (seed, budget, mode, start) in enumerate(runs, 1):
        records.append(search(data, budget, mode, start, seed, args.iters, batch_size))
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
        write_atomic(args.json, lambda f: json.dump(records, f, indent=1))


if __name__ == '__main__':
    main()
