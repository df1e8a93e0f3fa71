"""Evaluate a checkpoint with a config, like mmdet's/mmpretrain's tools/test.py.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE.json]
                         [--cfg-options key=value ...] [--launcher pytorch]
"""
import argparse
import json
import os.path as osp

import bpnas_mm  # noqa: F401  (registers the plugin)
from bpnas_mm.utils import keep_freed_memory
from bpnas_mm.utils.atomic_write import write_atomic
from bpnas_mm.utils.cli import (add_run_args, build_runner, load_run_config,
                                nothing_left_on_input_error)
from bpnas_mm.utils.user_files import check_checkpoint_file, check_writable_dir, run_tool


def parse_args():
    parser = argparse.ArgumentParser(description='Evaluate a model')
    parser.add_argument('config', help='config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    add_run_args(parser)
    return parser.parse_args()


@run_tool
def main():
    args = parse_args()
    keep_freed_memory()  # CPU steps reuse freed memory (bpnas_mm/utils/malloc.py)
    cfg = load_run_config(args)
    cfg.load_from = check_checkpoint_file(args.checkpoint, 'checkpoint')
    if args.out:
        check_writable_dir(osp.dirname(osp.abspath(args.out)), '--out')
    with nothing_left_on_input_error(cfg.work_dir):
        metrics = build_runner(cfg).test()
    if args.out:
        write_atomic(args.out, lambda f: json.dump({k: float(v) for k, v in metrics.items()},
                                                   f, indent=2))
        print(f'metrics written to {args.out}')


if __name__ == '__main__':
    main()
