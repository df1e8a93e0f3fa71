"""Small helpers shared by the command-line tools."""
import re
from contextlib import contextmanager
from typing import Dict, Optional, Sequence


def parse_named_counts(items: Sequence[str], allow_all: bool = False
                       ) -> Dict[str, Optional[int]]:
    """Parse ``NAME=COUNT`` items (``NAME=all`` -> None when ``allow_all``).

    >>> parse_named_counts(['train=6', 'val=all'], allow_all=True)
    {'train': 6, 'val': None}
    """
    out = {}
    for item in items:
        name, _, count = item.partition('=')
        if not name or not (count.isdigit() or (allow_all and count == 'all')):
            wanted = 'NAME=COUNT (or NAME=all)' if allow_all else 'NAME=COUNT'
            raise ValueError(f'--splits wants {wanted} items, got {item!r}')
        if name in out:
            raise ValueError(f'--splits: split {name!r} is given twice (its files would '
                             f'overwrite each other); names must be distinct')
        out[name] = None if count == 'all' else int(count)
    return out


def add_run_args(parser) -> None:
    """The options tools/train.py and tools/test.py share (mmdet's names)."""
    from mmengine.config import DictAction
    parser.add_argument('--work-dir', help='where logs (and checkpoints) go')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def load_run_config(args):
    """The config of a train/test run: read (one-line errors), ``--cfg-options``
    merged, ``work_dir`` set (``./work_dirs/CONFIG_NAME`` by default) and
    checked writable, a gloo group started for CPU-only distributed runs."""
    import os
    import os.path as osp

    from .cpu_dist import init_cpu_dist_if_needed
    from .user_files import check_writable_dir, load_config
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    cfg = load_config(args.config)
    cfg.launcher = args.launcher
    init_cpu_dist_if_needed(args.launcher)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    check_writable_dir(cfg.work_dir, 'work_dir')
    return cfg


def build_runner(cfg):
    """The config's ``runner_type`` (the project's base configs:
    ``bpnas_mm.SafeCheckpointRunner``), as mmdet's tools do, else mmengine's Runner."""
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner
    return RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)


_LOG_DIR = re.compile(r'^\d{8}_\d{6}$')  # mmengine's per-run log folder


@contextmanager
def nothing_left_on_input_error(work_dir: str):
    """Remove what a run that stopped on an :class:`InputError` created in
    ``work_dir`` (mmengine writes its log folder before it builds the model,
    and dumps the config before it loads weights): new log folders without
    checkpoints, the config's dump, and ``work_dir`` itself if it is new and
    left empty."""
    import os
    import os.path as osp
    import shutil

    from .user_files import InputError
    existed = osp.isdir(work_dir)
    before = set(os.listdir(work_dir)) if existed else set()
    try:
        yield
    except InputError:
        if osp.isdir(work_dir):
            for name in set(os.listdir(work_dir)) - before:
                path = osp.join(work_dir, name)
                if _LOG_DIR.match(name) and osp.isdir(path) and not any(
                        f.endswith('.pth') for _, _, files in os.walk(path) for f in files):
                    shutil.rmtree(path, ignore_errors=True)
                elif name.endswith('.py') and osp.isfile(path):  # the config's dump
                    os.remove(path)
            if not existed and not os.listdir(work_dir):
                os.rmdir(work_dir)
        raise
