"""Plot a search's importance factors over time (paper Fig. 4), E against the budget and,
for a search under several limits, each other limit (limits.png).

    python tools/analysis/plot_search.py WORK_DIR [--groups G ...] [--out-dir DIR]

Reads ``WORK_DIR/arch_history.jsonl`` (written by ``bpnas_mm.ArchLoggingHook``)
and writes ``importance_factors.png`` and ``expected_bits.png``.
"""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402


def load_history(work_dir):
    path = os.path.join(work_dir, 'arch_history.jsonl')
    if not os.path.isfile(path):
        sys.exit(f'{path} not found: was the search run with bpnas_mm.ArchLoggingHook?')
    with open(path) as f:
        lines = [(n, line) for n, line in enumerate(f, 1) if line.strip()]
    records = []
    for i, (n, line) in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i < len(lines) - 1:
                sys.exit(f'{path} line {n} is not a JSON record ({e})')
            print(f'{path}: the last line is cut off (a killed search); skipped')
    if not records:
        sys.exit(f'{path} is empty')
    # a resumed run appends: keep the last record of each iteration
    by_iter = {r['iter']: r for r in records}
    return [by_iter[i] for i in sorted(by_iter)]


def plot_importance(records, groups, path):
    cands = records[0]['candidates']
    iters = [r['iter'] for r in records]
    cols = min(3, len(groups))
    rows = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.2 * rows), squeeze=False)
    for ax, g in zip(axes.flat, groups):
        for j, (w, a) in enumerate(cands):
            ax.plot(iters, [r['probs'][g][j] for r in records], label=f'({w},{a})')
        ax.set_title(g, fontsize=9)
        ax.set_ylim(0, 1)
        ax.set_xlabel('iteration')
        ax.set_ylabel('p')
    for ax in list(axes.flat)[len(groups):]:
        ax.axis('off')
    axes.flat[0].legend(fontsize=7, title='(w, a) bits')
    fig.suptitle('importance factors p = softmax(theta)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_bits(records, path):
    iters = [r['iter'] for r in records]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(iters, [r['expected_bits'] for r in records], label='E (expected, Eq. 10)')
    ax.plot(iters, [r['argmax_bits'] for r in records], label='argmax configuration')
    ax.plot(iters, [r['sampled_bits'] for r in records], '--', label='exported (repaired)')
    if records[-1].get('budget') is not None:
        ax.plot(iters, [r['budget'] for r in records], 'k:', label='budget B_max')
    ax.set_xlabel('iteration')
    ax.set_ylabel('average bits')
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_limits(records, names, path):
    """One panel per limit besides average bits: expected, written and the limit."""
    iters = [r['iter'] for r in records]
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 3.5), squeeze=False)
    for ax, name in zip(axes.flat, names):
        states = [r['constraints'][name] for r in records]
        ax.plot(iters, [s['expected'] for s in states], label='expected (supernet)')
        ax.plot(iters, [s['value'] for s in states], '--', label='exported (repaired)')
        ax.plot(iters, [s['limit'] for s in states], 'k:', label='limit')
        ax.set_title(name)
        ax.set_xlabel('iteration')
        ax.set_ylabel(states[-1]['unit'])
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('work_dir')
    p.add_argument('--groups', nargs='+', help='groups to plot (default: all, at most 12)')
    p.add_argument('--out-dir', help='where the PNGs go (default: WORK_DIR)')
    args = p.parse_args(argv)
    records = load_history(args.work_dir)
    known = list(records[-1]['probs'])
    groups = args.groups or known[:12]
    unknown = [g for g in groups if g not in known]
    if unknown:
        sys.exit(f'unknown groups {unknown}; the search has: {known}')
    out = args.out_dir or args.work_dir
    os.makedirs(out, exist_ok=True)
    plot_importance(records, groups, os.path.join(out, 'importance_factors.png'))
    plot_bits(records, os.path.join(out, 'expected_bits.png'))
    written = ['importance_factors.png', 'expected_bits.png']
    limits = [n for n in records[-1].get('constraints', {}) if n != 'avg_bits']
    if limits:
        plot_limits(records, limits, os.path.join(out, 'limits.png'))
        written.append('limits.png')
    print('wrote ' + ', '.join(os.path.join(out, f) for f in written))


if __name__ == '__main__':
    main()
