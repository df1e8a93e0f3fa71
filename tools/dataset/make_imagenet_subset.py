"""Make the K-class ImageNet subset of the ResNet50 search (paper Sec. 4.2).

    python tools/dataset/make_imagenet_subset.py data/imagenet data/imagenet/subset10 \
        [--classes n01440764 ... | --num-classes 10] \
        [--splits search_train=5000 search_val=5000] [--seed 0]

Writes mmpretrain annotation lists (no images copied): OUT/meta/<split>.txt
and OUT/meta/classes.txt; see configs/bpnas/bpnas_resnet50_imagenet10_search_b4.py.
"""
import argparse
import sys

from bpnas_mm.datasets.imagenet_subset import make_imagenet_subset
from bpnas_mm.utils.cli import parse_named_counts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('root')
    p.add_argument('out_dir')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--classes', nargs='+')
    g.add_argument('--num-classes', type=int, default=10)
    p.add_argument('--splits', nargs='+', default=['search_train=5000', 'search_val=5000'])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--source-split', default='train')
    args = p.parse_args(argv)
    try:
        splits = parse_named_counts(args.splits)
        out = make_imagenet_subset(args.root, args.out_dir, splits, args.classes,
                                   args.num_classes, args.seed, args.source_split)
    except (FileNotFoundError, ValueError) as e:
        sys.exit(f'error: {e}')
    for name, path in out.items():
        print(f'{name}: {path}')


if __name__ == '__main__':
    main()
