"""Make a K-category COCO subset (the paper's 5-category detection search data).

    python tools/dataset/make_coco_subset.py ANN_JSON OUT_DIR \
        --categories person car cup dog chair | --num-categories 5 \
        --splits search_train=6000 search_val=4000 [--seed 0]
        [--img-dir DIR --copy-images]
        [--max-side 320] [--licenses 4 5 6 7 8]

Deterministic for a given seed; splits are disjoint (NAME=all takes the rest);
category ids become 1..K. Paper setting: 5 categories, 6K (W) / 4K (theta)
images from COCO train2017; evaluate on val2017 filtered the same way:

    ... instances_val2017.json data/coco/5cat --categories ... --splits val2017=all
"""
import argparse
import sys

from bpnas_mm.datasets.coco_subset import make_coco_subset
from bpnas_mm.utils.cli import parse_named_counts


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('ann_file')
    p.add_argument('out_dir')
    cats = p.add_mutually_exclusive_group()
    cats.add_argument('--categories', nargs='+', help='category names, in id order')
    cats.add_argument('--num-categories', type=int, default=5,
                      help='draw this many categories with --seed (default 5)')
    p.add_argument('--splits', nargs='+', default=['search_train=6000', 'search_val=4000'])
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--img-dir', help='source images (for --copy-images)')
    p.add_argument('--copy-images', action='store_true')
    p.add_argument('--max-side', type=int, help='shrink copied images to this longest side')
    p.add_argument('--licenses', type=int, nargs='+', help='keep only these license ids')
    args = p.parse_args(argv)
    try:
        splits = parse_named_counts(args.splits, allow_all=True)
        make_coco_subset(args.ann_file, args.img_dir, args.out_dir, splits,
                         categories=args.categories, num_categories=args.num_categories,
                         seed=args.seed, licenses=args.licenses, copy_images=args.copy_images,
                         max_side=args.max_side)
    except (OSError, ValueError) as e:  # missing/unreadable files, a full disk, bad values
        sys.exit(f'error: {e}')


if __name__ == '__main__':
    main()
