"""Check an exported model with onnxruntime against the PyTorch fake-quant model.

    python tools/deploy/verify_onnx.py CONFIG CHECKPOINT DEPLOY_DIR [--no-optimize]
        [--max-batches N] [--json OUT.json] [--cfg-options key=value ...]

Classifiers: top-1 of both on the config's test set and their per-image
agreement. Detectors: CocoMetric bbox mAP of both on the config's test set,
each image zero-padded to the graph's input size (the PyTorch model sees the
same padded tensor), and the detections matched one to one (same label,
IoU >= 0.9) against mmdet's predict and against the export graph run in
PyTorch. Then the file size (against the ideal ``sum(params * w_bits) / 8``)
and the op types onnxruntime runs after its optimizations (``QLinearConv``,
``QGemm``: integer kernels).
"""
import argparse
import json
import os.path as osp

import onnx
from mmengine.config import DictAction

import bpnas_mm  # noqa: F401  (registers the plugin)
from bpnas_mm.deploy.loading import load_quant_model
from bpnas_mm.deploy.runtime import fused_ops
from bpnas_mm.deploy.verify import classifier_parity, detector_parity
from bpnas_mm.utils.user_files import check_writable_dir, read_json, run_tool


def ideal_bytes(sidecar: dict, graph) -> float:
    inits = {t.name: t for t in graph.graph.initializer}
    total = 0.0
    for entry in sidecar['layers'].values():
        t = inits[entry['weight_initializer']]
        n = 1
        for d in t.dims:
            n *= d
        total += n * entry['w_bits'] / 8
    return total


@run_tool
def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('deploy_dir')
    p.add_argument('--no-optimize', action='store_true',
                   help='run the graph without onnxruntime\'s rewrites')
    p.add_argument('--max-batches', type=int)
    p.add_argument('--json', help='also write the report to this file')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = p.parse_args()
    if args.json:
        check_writable_dir(osp.dirname(osp.abspath(args.json)), '--json')
    path = osp.join(args.deploy_dir, 'model.onnx')
    meta = osp.join(args.deploy_dir, 'model.json')
    for f in (path, meta):
        if not osp.isfile(f):
            raise SystemExit(f'deploy dir: {f} not found (run tools/deploy/export_onnx.py)')
    sidecar = read_json(meta, 'deploy dir')
    task = sidecar.get('task')
    if task not in ('classifier', 'detector'):
        raise SystemExit(f'{meta}: task {task!r}; verified: classifier, detector')
    cfg, model, _ = load_quant_model(args.config, args.checkpoint, None, args.cfg_options)
    if task == 'classifier':
        report = classifier_parity(cfg, model, path, args.max_batches,
                                   optimize=not args.no_optimize)
    else:
        report = detector_parity(cfg, model, path, sidecar['input']['shape'][2:],
                                 args.max_batches, optimize=not args.no_optimize)
    report['onnx_bytes'] = osp.getsize(path)
    report['ideal_weight_bytes'] = ideal_bytes(sidecar, onnx.load(path))
    report['runtime_ops'] = dict(fused_ops(path))
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=1)


if __name__ == '__main__':
    main()
