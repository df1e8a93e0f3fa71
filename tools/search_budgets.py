"""One supernet, many budgets: train a search config's supernet once, search each budget.

    python tools/search_budgets.py CONFIG --budgets 2.5 3 3.5 4 5 [--work-dir DIR]
        [--metric accuracy/top1] [--supernet-mode composite|sample] [--theta-mu START END]
        [--cfg-options ...]
        [--retrain RETRAIN_CONFIG [--retrain-epochs N] [--retrain-options key=value ...]]

CONFIG is a BP-NAS search config (model.type=bpnas_mm.BPNAS, the search loop).
Its W steps run once, for train_cfg.max_epochs, with theta held uniform
(DIR/supernet/, weights in DIR/supernet/supernet.pth); then, per budget, its
theta steps alone, for the same epochs and search samples, from those weights at
the budget's feasible start (DIR/budget_<b>/). A budget replaces the config's
average-bit limit; its other limits (budget=dict(..., weight_mb=...)) stay.
Every budget is checked on the supernet before any training. --supernet-mode
sets how the W steps use the uniform theta (default: the config's search.mode):
'composite' trains the mixture of every candidate, 'sample' one uniformly
sampled path per step; the budgets' theta steps keep the config's mode.
--theta-mu START END replaces the barrier weight's schedule (the config's
BarrierMuHook) in the theta phases: with frozen weights the task loss pulls
less than in a full search, and the default schedule leaves budget unused
(README, "One supernet, many budgets").

With --retrain, each budget's configuration is then retrained with that
fixed-precision config's recipe (its model.mixed_precision set to the budget's
file) for N epochs (default: the config's; a cosine schedule over the whole run
is shortened with it), from the shared supernet's weights unless
--retrain-options names model.float_checkpoint or model.supernet_checkpoint,
and validated (DIR/budget_<b>/retrain/). --cfg-options reach the search only:
give the retrain config its own (data_root, batch size) with --retrain-options.

Writes into DIR: mixed_precision_b<b>.json (one per budget, inside it),
budgets.json, budgets.md (a table: average bits, inside, repaired, the
validation metric with the supernet's weights and after retraining, minutes)
and <metric>_vs_avg_bits.png.
"""
import argparse
import os.path as osp

from mmengine.config import DictAction

import bpnas_mm  # noqa: F401  (registers the plugin)
from bpnas_mm.engine.many_budgets import (SUPERNET_MODES, default_metric, search_budgets,
                                          write_outputs)
from bpnas_mm.utils import keep_freed_memory
from bpnas_mm.utils.cli import (add_run_args, build_runner, load_run_config,
                                nothing_left_on_input_error)
from bpnas_mm.utils.user_files import InputError, load_config, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('config', help='a BP-NAS search config')
    p.add_argument('--budgets', type=float, nargs='+', required=True,
                   help='B_max values in average bits, one search each')
    p.add_argument('--metric', help='the validation metric of the table and plot '
                                    '(default: the first one the evaluator reports)')
    p.add_argument('--supernet-mode', choices=SUPERNET_MODES,
                   help="how the supernet's W steps use the uniform theta "
                        "(default: the config's search.mode)")
    p.add_argument('--theta-mu', type=float, nargs=2, metavar=('START', 'END'),
                   help="the barrier weight's schedule in the theta phases (default: the "
                        "config's BarrierMuHook, e.g. 0.05 0.2)")
    p.add_argument('--retrain', metavar='RETRAIN_CONFIG',
                   help='a fixed-precision config (model.type=bpnas_mm.QuantModel) to '
                        'retrain each configuration with, then validate it')
    p.add_argument('--retrain-epochs', type=int, metavar='N',
                   help="epochs of each retrain (default: the retrain config's)")
    p.add_argument('--retrain-options', nargs='+', action=DictAction,
                   help='override retrain config settings, key=value')
    add_run_args(p)
    args = p.parse_args(argv)
    if args.retrain is None and (args.retrain_epochs is not None or args.retrain_options):
        p.error('--retrain-epochs and --retrain-options need --retrain RETRAIN_CONFIG')
    return args


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
    retrain_cfg = None
    if args.retrain:
        retrain_cfg = load_config(args.retrain)
        if args.retrain_options:
            retrain_cfg.merge_from_dict(args.retrain_options)

    def write(done):
        nonlocal metric
        metric = metric or default_metric(done)
        write_outputs(done, work, metric)

    with nothing_left_on_input_error(work):
        done = search_budgets(cfg, args.budgets, build_runner, on_result=write,
                              retrain_cfg=retrain_cfg, retrain_epochs=args.retrain_epochs,
                              supernet_mode=args.supernet_mode, theta_mu=args.theta_mu)
    missing = [r.avg_bits_limit for r in done.results if metric and metric not in r.metrics]
    if missing:
        print(f'warning: --metric {metric} was not reported for budgets {missing} (the '
              f'evaluator reported {sorted(done.results[0].metrics)}): no plot of them')
    print(open(osp.join(work, 'budgets.md')).read())
    print(f'written: {work}/budgets.md, budgets.json, mixed_precision_b<b>.json'
          + (f', {metric.replace("/", "_")}_vs_avg_bits.png' if metric else ''))


if __name__ == '__main__':
    main()
