"""One supernet, many budgets: train a search config's supernet once, search each budget.

    python tools/search_budgets.py CONFIG --budgets 2.5 3 3.5 4 5 [--work-dir DIR]
        [--metric accuracy/top1] [--cfg-options key=value ...]

CONFIG is a BP-NAS search config (model.type=bpnas_mm.BPNAS, the search loop).
Its W steps run once, for train_cfg.max_epochs, with theta held uniform
(DIR/supernet/, weights in DIR/supernet/supernet.pth); then, per budget, its
theta steps alone, for the same epochs and search samples, from those weights at
the budget's feasible start (DIR/budget_<b>/). A budget replaces the config's
average-bit limit; its other limits (budget=dict(..., weight_mb=...)) stay.
Every budget is checked on the supernet before any training.

Writes into DIR: mixed_precision_b<b>.json (one per budget, inside it),
budgets.json, budgets.md (a table: average bits, inside, repaired, the
validation metric with the supernet's weights, minutes) and
<metric>_vs_avg_bits.png. Retrain a file as after any search (the retrain
config's model.mixed_precision).
"""
import argparse
import os.path as osp

import bpnas_mm  # noqa: F401  (registers the plugin)
from bpnas_mm.engine.many_budgets import default_metric, search_budgets, write_outputs
from bpnas_mm.utils import keep_freed_memory
from bpnas_mm.utils.cli import (add_run_args, build_runner, load_run_config,
                                nothing_left_on_input_error)
from bpnas_mm.utils.user_files import InputError, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('config', help='a BP-NAS search config')
    p.add_argument('--budgets', type=float, nargs='+', required=True,
                   help='B_max values in average bits, one search each')
    p.add_argument('--metric', help='the validation metric of the table and plot '
                                    '(default: the first one the evaluator reports)')
    add_run_args(p)
    return p.parse_args(argv)


@run_tool
def main(argv=None):
    args = parse_args(argv)
    if args.launcher != 'none':
        raise InputError(f'--launcher {args.launcher}: the many-budgets driver runs its '
                         f'phases in one process; run it without a launcher')
    keep_freed_memory()
    cfg = load_run_config(args)
    work = osp.abspath(cfg.work_dir)
    cfg.work_dir = work
    metric = args.metric

    def write(done):
        nonlocal metric
        metric = metric or default_metric(done)
        write_outputs(done, work, metric)

    with nothing_left_on_input_error(work):
        done = search_budgets(cfg, args.budgets, build_runner, on_result=write)
    missing = [r.avg_bits_limit for r in done.results if metric and metric not in r.metrics]
    if missing:
        print(f'warning: --metric {metric} was not reported for budgets {missing} (the '
              f'evaluator reported {sorted(done.results[0].metrics)}): no plot of them')
    print(open(osp.join(work, 'budgets.md')).read())
    print(f'written: {work}/budgets.md, budgets.json, mixed_precision_b<b>.json'
          + (f', {metric.replace("/", "_")}_vs_avg_bits.png' if metric else ''))


if __name__ == '__main__':
    main()
