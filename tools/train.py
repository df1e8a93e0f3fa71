"""Train (or search) with a config, like mmdet's/mmpretrain's tools/train.py.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
                          [--cfg-options key=value ...] [--launcher pytorch]

bpnas_mm is imported before the config is read, so its components resolve
whether or not the config has ``custom_imports``. A file that cannot be used
(config, checkpoint, mixed-precision file, work dir) ends the run with one
line naming it, before any training.
"""
import argparse

from mmengine.device import get_device

import bpnas_mm  # noqa: F401  (registers the plugin)
from bpnas_mm.utils import keep_freed_memory
from bpnas_mm.utils.cli import (add_run_args, build_runner, load_run_config,
                                nothing_left_on_input_error)
from bpnas_mm.utils.user_files import check_checkpoint_file, run_tool


def parse_args():
    parser = argparse.ArgumentParser(description='Train or search a model')
    parser.add_argument('config', help='config file')
    parser.add_argument('--resume', nargs='?', type=str, const='auto',
                        help='resume from CKPT, or from the latest checkpoint of the work dir')
    parser.add_argument('--amp', action='store_true',
                        help='mixed-precision training (mmengine AmpOptimWrapper; needs a GPU)')
    add_run_args(parser)
    return parser.parse_args()


@run_tool
def main():
    args = parse_args()
    keep_freed_memory()  # CPU steps reuse freed memory (bpnas_mm/utils/malloc.py)
    cfg = load_run_config(args)
    if args.amp:
        if get_device() == 'cpu':
            raise SystemExit('--amp: mmengine\'s AmpOptimWrapper needs a GPU (CUDA, NPU, MLU or '
                             'MUSA) and this machine has none; train without --amp')
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = check_checkpoint_file(args.resume, '--resume')
    if cfg.get('load_from') and '://' not in str(cfg.load_from):
        check_checkpoint_file(cfg.load_from, 'load_from')
    with nothing_left_on_input_error(cfg.work_dir):
        build_runner(cfg).train()


if __name__ == '__main__':
    main()
