"""Write the paper's mixed-precision configurations as preset files.

    python tools/misc/make_paper_presets.py [--out-dir configs/mixed_precision]

Table 4 (ResNet20 / CIFAR-10, B_max = 3, 3.5, 4; first conv at 8 bit, the
classifier, which the table does not list, fixed at 8 bit too) and Table 5
(Faster R-CNN R50-FPN / COCO), in the format the search writes, with the totals
our BOPs counter computes (which need not equal the paper's printed ratios).
"""
import argparse
import os

from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

import bpnas_mm  # noqa: F401
from bpnas_mm.export import save_mixed_precision
from bpnas_mm.export.summary import mixed_precision_of

R20_BLOCKS = [f'backbone.layer{s}.{b}' for s in (1, 2, 3) for b in range(3)]
TABLE4 = {  # blocks 1..9 as (w_bits, a_bits)
    3.0: [(3, 3), (3, 3), (3, 3), (3, 3), (2, 4), (2, 4), (3, 3), (3, 3), (3, 3)],
    3.5: [(3, 3), (2, 4), (4, 4), (4, 4), (3, 3), (2, 4), (3, 3), (3, 3), (3, 3)],
    4.0: [(6, 4), (4, 4), (4, 4), (4, 3), (3, 3), (2, 4), (3, 3), (3, 3), (3, 3)],
}
TABLE4_PAPER = {3.0: dict(w_comp=12.08, b_comp=116.89, avg_bits=2.9),
                3.5: dict(w_comp=10.74, b_comp=95.61, avg_bits=3.3),
                4.0: dict(w_comp=10.19, b_comp=81.53, avg_bits=3.5)}

TABLE5 = {  # part -> (w_bits list, a_bits list), in block order
    'backbone.conv1': ([4], [8]),
    'backbone.layer1': ([4, 3, 3], [4, 5, 5]),
    'backbone.layer2': ([3, 4, 4, 4], [5, 4, 3, 4]),
    'backbone.layer3': ([4, 4, 4, 3, 4, 4], [6, 3, 4, 5, 4, 3]),
    'backbone.layer4': ([3, 4, 4], [5, 4, 6]),
}
TABLE5_UNIFORM_4 = ['neck.lateral_convs.0.conv', 'neck.lateral_convs.1.conv',
                    'neck.lateral_convs.2.conv', 'neck.lateral_convs.3.conv',
                    'neck.fpn_convs.0.conv', 'neck.fpn_convs.1.conv',
                    'neck.fpn_convs.2.conv', 'neck.fpn_convs.3.conv',
                    'rpn_head.rpn_conv', 'rpn_head.rpn_cls', 'rpn_head.rpn_reg',
                    'roi_head.bbox_head.shared_fcs.0', 'roi_head.bbox_head.shared_fcs.1',
                    'roi_head.bbox_head.fc_cls', 'roi_head.bbox_head.fc_reg']


def build(config):
    cfg = Config.fromfile(config)
    init_default_scope(cfg.default_scope)
    return MODELS.build(cfg.model)


def table5_group_bits():
    bits = {}
    for part, (ws, as_) in TABLE5.items():
        if part == 'backbone.conv1':
            bits[part] = (ws[0], as_[0])
            continue
        for i, (w, a) in enumerate(zip(ws, as_)):
            bits[f'{part}.{i}'] = (w, a)
    for name in TABLE5_UNIFORM_4:
        bits[name] = (4, 4)
    return bits


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--out-dir', default='configs/mixed_precision')
    args = p.parse_args(argv)
    written = []
    model = build('configs/quant/resnet20_cifar10_w4a4.py')
    for b_max, blocks in TABLE4.items():
        tag = str(b_max).replace('.0', '').replace('.', 'p')
        mp = mixed_precision_of(
            model, dict(zip(R20_BLOCKS, blocks)),
            source=f'BP-NAS paper, supplementary Table 4 (ResNet20, CIFAR-10, B_max = {b_max})',
            extra=dict(budget_avg_bits=b_max, paper_reported=TABLE4_PAPER[b_max],
                       model_config='configs/quant/resnet20_cifar10_w4a4.py'))
        written.append(save_mixed_precision(
            mp, os.path.join(args.out_dir, f'resnet20_cifar10_paper_bmax{tag}.json')))
    model = build('configs/quant/faster_rcnn_r50_fpn_w4a4_coco5.py')
    mp = mixed_precision_of(
        model, table5_group_bits(),
        source='BP-NAS paper, supplementary Table 5 (Faster R-CNN R50-FPN, COCO, B_max = 4); '
               'its "roi_head Conv 3" row is the RPN head (rpn_conv, rpn_cls, rpn_reg)',
        extra=dict(budget_avg_bits=4.0, paper_reported=dict(b_comp=64.76),
                   model_config='configs/quant/faster_rcnn_r50_fpn_w4a4_coco5.py'))
    written.append(save_mixed_precision(
        mp, os.path.join(args.out_dir, 'faster_rcnn_r50_fpn_coco_paper_bmax4.json')))
    for path in written:
        print('wrote', path)


if __name__ == '__main__':
    main()
