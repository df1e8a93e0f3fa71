"""Convert a public CIFAR ResNet checkpoint (e.g. resnet20-12fca82f.th) for
``configs/resnet20_cifar10_float.py``.

    python tools/model_converters/resnet_cifar_to_mmpretrain.py SRC.th DST.pth
"""
import argparse
import os

import torch

from bpnas_mm.models.convert import convert_resnet_cifar
from bpnas_mm.utils.atomic_write import write_atomic
from bpnas_mm.utils.user_files import (InputError, check_writable_dir, read_state_dict, run_tool,
                                     shown)


@run_tool
def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('src')
    p.add_argument('dst')
    args = p.parse_args(argv)
    state = read_state_dict(args.src, 'source checkpoint')
    check_writable_dir(os.path.dirname(os.path.abspath(args.dst)), 'destination')
    try:
        out = convert_resnet_cifar(state)
    except KeyError as e:
        raise InputError(f'source checkpoint: {shown(args.src)} is not a CIFAR ResNet '
                         f'checkpoint ({e.args[0]})')
    write_atomic(args.dst, lambda f: torch.save(
        {'state_dict': out, 'meta': {'converted_from': os.path.basename(args.src)}}, f),
        binary=True)
    print(f'converted {len(state)} tensors -> {args.dst} ({len(out)} keys)')


if __name__ == '__main__':
    main()
