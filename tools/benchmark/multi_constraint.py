"""A search under average bits alone against one under average bits *and* a size limit.

    python tools/benchmark/multi_constraint.py [--budget 3.5] [--size-fraction 0.85]
        [--seeds 0] [--search-epochs 2] [--search-images 6000 4000]
        [--retrain-epochs 4] [--retrain-images 20000] [--work-dir work_dirs/multi_constraint]
        (and the data, weights and optimizer options of cifar_quality.py)

On real CIFAR-10, from the converted public ResNet20, per seed:
  1. BP-NAS with ``budget=B`` (average bits only); its file's weight size is S;
  2. BP-NAS with ``budget=dict(avg_bits=B, weight_mb=f * S)``: a limit the first
     search's result violates;
  3. both configurations retrained with the same recipe and tested on the full
     10,000-image test set.
Writes results.json and results.md (average bits, weight MB, inside both limits,
top-1, minutes) into the work dir. The search and retrain runs are those of
``cifar_quality.py`` (tools/train.py and tools/test.py on the project's configs).
"""
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(__file__))
from cifar_quality import RETRAIN, Bench, common_args  # noqa: E402

from bpnas_mm.bops.cost import CostTotals  # noqa: E402


def _weight_mb(summary: dict) -> float:
    return CostTotals.from_dict(summary).weight_mb


def main(argv=None):
    p = common_args(__doc__)
    p.add_argument('--size-fraction', type=float, default=0.85,
                   help="the second search's weight_mb limit, as a fraction of the first "
                        "search's result")
    p.set_defaults(budget=3.5, seeds=[0], work_dir='work_dirs/multi_constraint')
    args = p.parse_args(argv)
    bench = Bench(args)
    bench.prepare()
    rows = []
    for seed in args.seeds:
        t0 = time.time()
        mp_a, _, _ = bench.search(f'bits_s{seed}', seed, 'barrier')
        size_a = _weight_mb(json.load(open(mp_a))['summary'])
        limit = args.size_fraction * size_a
        budget = [f'model.budget.avg_bits={args.budget}', f'model.budget.weight_mb={limit}']
        t_a = time.time() - t0
        t0 = time.time()
        mp_b, _, _ = bench.search(f'bits_size_s{seed}', seed, 'barrier',
                                  budget_opts=['model.budget._delete_=True', *budget])
        t_b = time.time() - t0
        for name, mp_path, t_search, limits in (
                (f'avg_bits <= {args.budget}', mp_a, t_a, None),
                (f'avg_bits <= {args.budget}, weight_mb <= {limit:.4f}', mp_b, t_b, limit)):
            mp = json.load(open(mp_path))
            top1, summary, t_train = bench.train_fixed(
                osp.basename(osp.dirname(mp_path)) + '_retrain', RETRAIN, seed,
                args.retrain_epochs, mp_path)
            size = _weight_mb(summary)
            rows.append(dict(search=name, seed=seed, avg_bits=summary['avg_bits'],
                             weight_mb=size, size_limit=limit, w_comp=summary['w_comp'],
                             b_comp=summary['b_comp'],
                             inside_bits=summary['avg_bits'] <= args.budget + 1e-9,
                             inside_size=None if limits is None else size <= limit + 1e-12,
                             repaired=mp['repaired'], top1=top1,
                             minutes=(t_search + t_train) / 60))
            print(f'{name} (seed {seed}): {summary["avg_bits"]:.3f} bits, {size:.4f} MB, '
                  f'top-1 {top1:.2f} %', flush=True)
            with open(osp.join(bench.work, 'results.json'), 'w') as f:
                json.dump(dict(settings=vars(args), rows=rows), f, indent=2)
    lines = ['| search | seed | avg bits | weight MB | inside avg_bits | inside weight_mb '
             '| repaired | W-Comp | B-Comp | top-1 % | minutes |', '|' + '---|' * 11]
    for r in rows:
        size_ok = '-' if r['inside_size'] is None else ('yes' if r['inside_size'] else 'NO')
        lines.append(f'| {r["search"]} | {r["seed"]} | {r["avg_bits"]:.3f} | '
                     f'{r["weight_mb"]:.4f} | {"yes" if r["inside_bits"] else "NO"} | {size_ok} '
                     f'| {r["repaired"]} | {r["w_comp"]:.2f}x | {r["b_comp"]:.2f}x | '
                     f'{r["top1"]:.2f} | {r["minutes"]:.1f} |')
    md = '\n'.join(lines)
    cmd = 'python tools/benchmark/multi_constraint.py ' + ' '.join(argv or sys.argv[1:])
    with open(osp.join(bench.work, 'results.md'), 'w') as f:
        f.write(f'`{cmd.strip()}`\n\n{md}\n')
    print('\n' + md)


if __name__ == '__main__':
    main()
