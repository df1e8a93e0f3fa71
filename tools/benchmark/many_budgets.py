"""K budgets from one shared supernet against K full searches, on real CIFAR-10.

    python tools/benchmark/many_budgets.py [--budgets 2.5 3 4] [--seeds 0 1]
        [--supernet-mode sample] [--theta-mu 0.01 0.04] [--search-epochs 2] [--search-images 6000 4000] [--retrain-epochs 2]
        [--retrain-images 10000] [--work-dir work_dirs/many_budgets]
        (and the data, weights and optimizer options of cifar_quality.py)

From the converted public ResNet20, per seed:
  1. shared: tools/search_budgets.py on the ResNet20 search config: the W steps
     once (theta uniform), then the theta steps per budget from those weights;
  2. full: one tools/train.py search per budget (Algorithm 1, W and theta steps
     alternating), the same epochs, images, optimizers and seed;
  3. every configuration retrained with the same short recipe from the float
     weights and tested on the full 10,000-image test set.
Writes results.json, results.md (per budget and seed: average bits, inside,
top-1 with the supernet's weights and after the retrain, minutes; then the wall
time of K budgets each way and the mean top-1 difference) and
top1_vs_avg_bits.png into the work dir (``_from_supernet`` in their names with
``--retrain-from supernet``). Wall times are of runs on the same machine one
after the other; anything else running beside them shows in them.
"""
import glob
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(__file__))
from cifar_quality import RETRAIN, SEARCH, Bench, common_args, tool  # noqa: E402

from bpnas_mm.engine.many_budgets import plot_curve  # noqa: E402

METRIC = 'accuracy/top1'


def last_val_metric(work_dir: str, key: str = METRIC):
    """The last ``key`` a run in ``work_dir`` logged (mmengine's vis_data/scalars.json)."""
    value = None
    for path in sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json'))):
        for line in open(path):
            record = json.loads(line)
            if key in record:
                value = record[key]
    return value


def mean(xs):
    return sum(xs) / len(xs)


def summary_lines(rows, seeds, budgets, walls):
    out = []
    for seed in seeds:
        shared, full = walls[seed]['shared'], walls[seed]['full']
        out.append(f'- seed {seed}: {len(budgets)} budgets from one supernet {shared:.1f} min, '
                   f'{len(budgets)} full searches {full:.1f} min ({full / shared:.2f}x)')
    diffs = []
    for b in budgets:
        got = {m: [r['top1'] for r in rows if r['budget'] == b and r['method'] == m]
               for m in ('shared', 'full')}
        if got['shared'] and got['full'] and len(got['shared']) == len(got['full']):
            d = mean(got['shared']) - mean(got['full'])
            diffs.append(d)
            out.append(f'- B_max={b:g}: retrained top-1 shared {mean(got["shared"]):.2f} %, full '
                       f'{mean(got["full"]):.2f} % (mean of {len(got["full"])} seeds, '
                       f'difference {d:+.2f})')
    if diffs:
        out.append(f'- over all budgets: shared minus full {mean(diffs):+.2f} top-1 points')
    return out


def write_results(bench, rows, seeds, budgets, walls, argv, suffix=''):
    lines = ['| B_max | seed | method | avg bits | inside | repaired | top-1 supernet weights % '
             '| top-1 retrained % | search minutes |', '|' + '---|' * 9]
    for r in sorted(rows, key=lambda r: (r['budget'], r['seed'], r['method'])):
        sup = '-' if r['supernet_top1'] is None else f'{r["supernet_top1"]:.2f}'
        lines.append(f'| {r["budget"]:g} | {r["seed"]} | {r["method"]} | {r["avg_bits"]:.3f} | '
                     f'{"yes" if r["inside"] else "NO"} | {r["repaired"]} | {sup} | '
                     f'{r["top1"]:.2f} | {r["search_minutes"]:.1f} |')
    md = '\n'.join(lines + [''] + summary_lines(rows, [s for s in seeds if s in walls],
                                                budgets, walls))
    cmd = 'python tools/benchmark/many_budgets.py ' + ' '.join(argv or sys.argv[1:])
    with open(osp.join(bench.work, f'results{suffix}.md'), 'w') as f:
        f.write(f'`{cmd.strip()}`\n\n{md}\n')
    with open(osp.join(bench.work, f'results{suffix}.json'), 'w') as f:
        json.dump(dict(settings=vars(bench.a), rows=rows, walls=walls), f, indent=2)
    series = {}
    for method, key, label in (('shared', 'supernet_top1', "shared supernet's weights"),
                               ('shared', 'top1', 'shared, retrained'),
                               ('full', 'top1', 'full search, retrained')):
        pts = []
        for b in budgets:
            got = [r for r in rows if r['budget'] == b and r['method'] == method
                   and r[key] is not None]
            if got:
                pts.append((mean([r['avg_bits'] for r in got]), mean([r[key] for r in got])))
        if pts:
            series[label] = pts
    if series:
        plot_curve(series, 'top-1 (%), mean over seeds', osp.join(bench.work,
                                                                 f'top1_vs_avg_bits{suffix}.png'),
                   budgets)
    return md


def main(argv=None):
    p = common_args(__doc__)
    p.add_argument('--budgets', type=float, nargs='+', default=[2.5, 3.0, 4.0])
    p.add_argument('--supernet-mode', choices=('composite', 'sample'),
                   help="the shared supernet's W steps (tools/search_budgets.py "
                        "--supernet-mode; default: the search config's mode)")
    p.add_argument('--theta-mu', type=float, nargs=2, metavar=('START', 'END'),
                   help="the shared search's barrier schedule in its theta phases "
                        "(tools/search_budgets.py --theta-mu; default: the config's)")
    p.add_argument('--retrain-from', choices=('float', 'supernet'), default='float',
                   help="the retrains' start: the float weights (the same for both methods) "
                        "or each method's own supernet (shared: supernet.pth; full: its "
                        "search's last checkpoint)")
    p.add_argument('--reuse-searches', action='store_true',
                   help='retrain the searches an earlier run left in --work-dir (its wall '
                        'times from its results.json) instead of searching again')
    p.set_defaults(retrain_epochs=2, retrain_images=10000, work_dir='work_dirs/many_budgets')
    args = p.parse_args(argv)
    bench = Bench(args)
    bench.prepare()
    rows, walls = [], {}
    suffix = '' if args.retrain_from == 'float' else '_from_supernet'
    earlier = dict(walls={}, rows=[])
    if args.reuse_searches:
        with open(osp.join(bench.work, 'results.json')) as f:
            earlier = json.load(f)

    def add(method, seed, b, mp_path, supernet_top1, search_minutes, supernet):
        mp = json.load(open(mp_path))
        name = f'{method}_b{b:g}_s{seed}_retrain{suffix}'
        top1, summary, _ = bench.train_fixed(name, RETRAIN, seed, args.retrain_epochs, mp_path,
                                             supernet if args.retrain_from == 'supernet'
                                             else None)
        rows.append(dict(method=method, seed=seed, budget=b, avg_bits=summary['avg_bits'],
                         inside=mp['inside_budget'], repaired=mp['repaired'],
                         supernet_top1=supernet_top1, top1=top1, search_minutes=search_minutes))
        print(f'{method} B_max={b:g} seed {seed}: {summary["avg_bits"]:.3f} bits, top-1 '
              f'{top1:.2f} % (supernet weights {supernet_top1})', flush=True)
        write_results(bench, rows, args.seeds, args.budgets, walls, argv, suffix)

    for seed in args.seeds:
        opts = bench.search_opts(seed, 'barrier')
        work = osp.join(bench.work, f'shared_s{seed}')
        t0 = time.time()
        mode = ['--supernet-mode', args.supernet_mode] if args.supernet_mode else []
        mode += ['--theta-mu', *map(str, args.theta_mu)] if args.theta_mu else []
        if not args.reuse_searches:
            tool('tools/search_budgets.py', SEARCH, '--budgets', *map(str, args.budgets), *mode,
                 '--work-dir', work, '--cfg-options', *opts,
                 log=osp.join(bench.work, f'shared_s{seed}.log'))
        walls[seed] = dict(shared=(time.time() - t0) / 60, full=0.0)
        done = json.load(open(osp.join(work, 'budgets.json')))
        full_files = {}
        for b in args.budgets:
            name = f'full_b{b:g}_s{seed}'
            if args.reuse_searches:
                mp_path = osp.join(bench.work, name, 'mixed_precision.json')
                ckpt = osp.join(bench.work, name, f'epoch_{args.search_epochs}.pth')
                minutes = next(r['search_minutes'] for r in earlier['rows']
                               if (r['method'], r['budget'], r['seed']) == ('full', b, seed))
            else:
                mp_path, ckpt, seconds = bench.search(name, seed, 'barrier',
                                                      budget_opts=[f'model.budget={b}'])
                minutes = seconds / 60
            walls[seed]['full'] += minutes
            full_files[b] = (mp_path, minutes, ckpt)
        if args.reuse_searches:
            walls[seed] = earlier['walls'][str(seed)]
        for r in done['results']:
            add('shared', seed, r['avg_bits_limit'], r['file'], r['metrics'].get(METRIC),
                r['minutes'], done['supernet'])
        for b, (mp_path, minutes, ckpt) in full_files.items():
            add('full', seed, b, mp_path, last_val_metric(osp.dirname(mp_path)), minutes, ckpt)
    md = write_results(bench, rows, args.seeds, args.budgets, walls, argv, suffix)
    print('\n' + md)
    print(f'\nwritten: {bench.work}/results{suffix}.md, results{suffix}.json, '
          f'top1_vs_avg_bits{suffix}.png')


if __name__ == '__main__':
    main()
