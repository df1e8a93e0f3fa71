"""Export a quantized (retrained) model as a standard ONNX integer (QDQ) graph.

    python tools/deploy/export_onnx.py CONFIG CHECKPOINT --out work_dirs/deploy/NAME
        [--mixed-precision FILE] [--shape H W] [--batch N] [--dynamic-batch]
        [--calibrate] [--float] [--requantize-outputs BATCHES] [--cfg-options key=value ...]

CONFIG is a retrain config (``type='bpnas_mm.QuantModel'``); CHECKPOINT a
retrain checkpoint, a search (supernet) checkpoint with ``--mixed-precision``,
or a float checkpoint with ``--calibrate`` (the quantizers' clips are then set
from one test batch, and the calibrated state is saved as
``OUT/calibrated.pth`` for ``verify_onnx.py``). Writes ``OUT/model.onnx`` and
its sidecar ``OUT/model.json``. Classifiers (mmpretrain) export logits for a
batch; two-stage detectors (mmdet Faster R-CNN) export as one graph from one
padded image (plus optional ``img_shape`` and ``scale_factor`` inputs) to the
final boxes, scores and labels. ``--shape`` defaults to the config's
``bops.input_shape``; for a detector it must cover the test pipeline's largest
padded image.
"""
import argparse
import os.path as osp

import torch
from mmengine.config import DictAction

import bpnas_mm  # noqa: F401  (registers the plugin)
from bpnas_mm.deploy.loading import calibrate, load_quant_model
from bpnas_mm.deploy.onnx_export import export_onnx, task_kind
from bpnas_mm.deploy.qdq_layers import ExportError
from bpnas_mm.deploy.verify import calibration_feeds
from bpnas_mm.utils.user_files import check_writable_dir, run_tool


def parse_args():
    p = argparse.ArgumentParser(description='Export a quantized model to ONNX (QDQ)')
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--out', required=True, help='output directory')
    p.add_argument('--mixed-precision', help='mixed-precision file (overrides the config\'s)')
    p.add_argument('--shape', nargs=2, type=int, metavar=('H', 'W'),
                   help='input size (default: the config\'s bops.input_shape)')
    p.add_argument('--batch', type=int, default=1)
    p.add_argument('--dynamic-batch', action='store_true')
    p.add_argument('--calibrate', action='store_true',
                   help='set uncalibrated clips from one test batch first')
    p.add_argument('--float', action='store_true', help='export the float model instead')
    p.add_argument('--requantize-outputs', type=int, metavar='BATCHES', default=0,
                   help='put 8-bit Q/DQ after the outputs that keep layers out of the '
                        'runtime\'s integer kernels, calibrated on BATCHES test batches (an '
                        'approximation the fake-quant model does not make; faster on CPU)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args()


@run_tool
def main():
    args = parse_args()
    check_writable_dir(args.out, '--out')
    if args.batch < 1:
        raise SystemExit(f'--batch must be >= 1, got {args.batch}')
    if args.requantize_outputs < 0 or (args.requantize_outputs and args.float):
        raise SystemExit('--requantize-outputs takes a number of batches >= 1, and not with '
                         '--float')
    cfg, model, kind = load_quant_model(args.config, args.checkpoint, args.mixed_precision,
                                        args.cfg_options)
    if args.calibrate:
        calibrate(cfg, model, 1)
    shape = tuple(model.bops_cfg['input_shape'])
    if args.shape:
        shape = (shape[0],) + tuple(args.shape)
    feeds = None
    if args.requantize_outputs:
        task = task_kind(model.architecture)
        feeds = list(calibration_feeds(cfg, model, task, (args.batch,) + shape,
                                args.requantize_outputs))
    try:
        sidecar = export_onnx(model, args.out, (args.batch,) + shape, quantized=not args.float,
                              dynamic_batch=args.dynamic_batch, requantize_feeds=feeds,
                              meta=dict(config=args.config, checkpoint=args.checkpoint,
                                        checkpoint_kind=kind, calibrated=args.calibrate,
                                        requantize_batches=args.requantize_outputs))
    except ExportError as e:
        raise SystemExit(f'export: {e}')
    if args.calibrate:
        torch.save({'state_dict': model.state_dict()}, osp.join(args.out, 'calibrated.pth'))
    print(f'wrote {osp.join(args.out, "model.onnx")} ({len(sidecar["layers"])} quantized '
          f'layers, {sidecar["int4_weights"]} int4 weight tensors, '
          f'{sidecar["batch_norms_folded"]} batch norms folded, '
          f'{len(sidecar["requantized_outputs"])} outputs requantized) and model.json')


if __name__ == '__main__':
    main()
