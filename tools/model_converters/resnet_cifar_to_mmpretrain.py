"""Convert a public CIFAR ResNet checkpoint (e.g. resnet20-12fca82f.th) for
``configs/resnet20_cifar10_float.py``.

    python tools/model_converters/resnet_cifar_to_mmpretrain.py SRC.th DST.pth
"""
import argparse
import os
import sys

import torch

from bpnas_mm.models.convert import convert_resnet_cifar


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('src')
    p.add_argument('dst')
    args = p.parse_args(argv)
    if not os.path.isfile(args.src):
        sys.exit(f'source checkpoint not found: {args.src}')
    ckpt = torch.load(args.src, map_location='cpu', weights_only=True)
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        sys.exit(f'{args.src}: no state dict found')
    out = convert_resnet_cifar(state)
    os.makedirs(os.path.dirname(os.path.abspath(args.dst)), exist_ok=True)
    tmp = args.dst + '.tmp'
    torch.save({'state_dict': out, 'meta': {'converted_from': os.path.basename(args.src)}}, tmp)
    os.replace(tmp, args.dst)
    print(f'converted {len(state)} tensors -> {args.dst} ({len(out)} keys)')


if __name__ == '__main__':
    main()
