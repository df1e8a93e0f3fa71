"""Print (and save as JSON) the BOPs report of a config's model.

    python tools/analysis/bops_report.py CONFIG [--mp-config FILE]
        [--include-fixed | --exclude-fixed] [--input-shape C H W]
        [--json OUT.json] [--cfg-options key=value ...]

A ``bpnas_mm.QuantModel`` config is reported as configured (or with the bits
of ``--mp-config``); any other model config is reported in float (32 bit).
"""
import argparse
import json
import os

from mmengine.config import DictAction
from mmengine.registry import MODELS, init_default_scope

import bpnas_mm  # noqa: F401
from bpnas_mm.bops.report import build_report, format_report
from bpnas_mm.bops.settings import check_bops_cfg
from bpnas_mm.models import QuantModel
from bpnas_mm.utils.atomic_write import write_atomic
from bpnas_mm.utils.user_files import check_writable_dir, load_config, require_file, run_tool


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('config')
    p.add_argument('--mp-config', help='mixed-precision JSON file to apply')
    fixed = p.add_mutually_exclusive_group()
    fixed.add_argument('--include-fixed', dest='include_fixed', action='store_true', default=None,
                       help='count fixed-precision layers in the totals')
    fixed.add_argument('--exclude-fixed', dest='include_fixed', action='store_false',
                       help='leave fixed-precision layers out of the totals (paper Table 1)')
    p.add_argument('--input-shape', type=int, nargs=3, metavar=('C', 'H', 'W'),
                   help='input size of the shape probe (default: the config\'s bops.input_shape)')
    p.add_argument('--json', help='also write the report as JSON here')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def build_model(cfg, input_shape=None):
    init_default_scope(cfg.get('default_scope', 'mmengine'))
    model = MODELS.build(cfg.model)
    if not isinstance(model, QuantModel):
        model = QuantModel(model, quant=dict(w_bits=32, a_bits=32))
    if input_shape:  # counted at another size than the config's (or the search's) own
        model.bops_cfg = check_bops_cfg(dict(model.bops_cfg, input_shape=tuple(input_shape)))
    return model


@run_tool
def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.mp_config:
        require_file(args.mp_config, '--mp-config')
    if args.json:
        check_writable_dir(os.path.dirname(os.path.abspath(args.json)), '--json')
    if cfg.model.get('type') in ('bpnas_mm.QuantModel', 'QuantModel'):
        # BOPs need no weights; the file given replaces the config's own (which may not exist)
        cfg.model.float_checkpoint = cfg.model.supernet_checkpoint = None
        if args.mp_config:
            cfg.model.mixed_precision = args.mp_config
    model = build_model(cfg, args.input_shape)
    if args.mp_config and model.mixed_precision is None:
        model.apply_mixed_precision(args.mp_config)
    include_fixed = model.bops_cfg['include_fixed'] if args.include_fixed is None \
        else args.include_fixed
    block_types = {}
    for g in model.groups:
        try:
            module = model.architecture.get_submodule(g)
        except AttributeError:
            continue
        if g not in model.qlayers:  # a block; single layers are typed Conv/Linear
            block_types[g] = type(module).__name__
    settings = dict(config=args.config, mp_config=args.mp_config,
                    input_shape=list(model.bops_cfg['input_shape']),
                    num_rois=model.bops_cfg['num_rois'], include_fixed=include_fixed)
    searched = (model.mixed_precision.extra.get('constraints', {})
                if model.mixed_precision is not None else {})
    limits = {name: c['limit'] for name, c in searched.items()}
    report = build_report(model.layer_costs(), include_fixed, block_types, settings, limits)
    print(format_report(report))
    if args.json:
        write_atomic(args.json, lambda f: json.dump(report, f, indent=2))
        print(f'\nJSON report written to {args.json}')
    return report


if __name__ == '__main__':
    main()
