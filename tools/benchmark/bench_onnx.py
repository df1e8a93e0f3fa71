"""onnxruntime (CPU) latency of the exported integer (QDQ) graphs against the float
graphs of the same models, measured side by side in one run.

    python tools/benchmark/bench_onnx.py [--runs 7] [--threads 2] [--batches 1 32]
        [--det-size 800 1344] [--skip-detector] [--skip-classifier] [--json OUT.json]

Models (weights random, quantizers calibrated on random inputs; latency does
not depend on the weights' values): ResNet-50 at 224 px
(configs/bpnas/bpnas_resnet50_imagenet_retrain.py: W4A4, stem and fc at 8 bits)
at each of ``--batches``, and Faster R-CNN R50-FPN with the paper's Table 5
configuration (configs/bpnas_faster_rcnn_r50_retrain.py) at ``--det-size``,
batch 1, as its backbone + neck and as the whole one-image graph. Every graph
is exported three ways: float, quantized as the fake-quant model computes it,
and quantized with 8-bit requantized outputs (``bpnas_mm/deploy/requantize.py``,
calibrated on one random batch: the approximation that lets onnxruntime fuse
the layers feeding residual adds, pools and RoI extraction). Each graph runs
once to warm up, then the three alternate ``--runs`` times; each ratio is the
median of the per-round ratios to float. The report also gives the
file sizes (quantized, float, ideal ``sum(params * w_bits) / 8``) and the op
types onnxruntime runs after its optimizations (``QLinearConv``/``QGemm``:
integer kernels; ``Conv``/``Gemm``/``FusedConv``: float).
"""
import argparse
import json
import os
import os.path as osp
import statistics
import sys
import tempfile
import time

import numpy as np
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
sys.path.insert(0, ROOT)

import bpnas_mm  # noqa: E402,F401  (registers the plugin)
from bpnas_mm.deploy.onnx_export import export_onnx  # noqa: E402
from bpnas_mm.deploy.runtime import fused_ops, session  # noqa: E402

RESNET50 = 'configs/bpnas/bpnas_resnet50_imagenet_retrain.py'
DETECTOR = 'configs/bpnas_faster_rcnn_r50_retrain.py'
INTEGER_OPS = ('QLinearConv', 'QGemm', 'QLinearMatMul', 'ConvInteger', 'MatMulInteger',
               'MatMulIntegerToFloat', 'DynamicQuantizeMatMul')
FLOAT_OPS = ('Conv', 'FusedConv', 'Gemm', 'FusedGemm', 'MatMul', 'FusedMatMul')


def build(config: str, scope: str):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    from bpnas_mm.registry import MODELS
    cfg = Config.fromfile(osp.join(ROOT, config))
    cfg.model.float_checkpoint = None
    cfg.model.supernet_checkpoint = None
    init_default_scope(scope)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


@torch.no_grad()
def calibrate(model, shape, detector: bool) -> None:
    x = torch.randn(*shape)
    if detector:
        from mmdet.structures import DetDataSample
        s = DetDataSample()
        hw = tuple(shape[2:])
        s.set_metainfo(dict(img_shape=hw, ori_shape=hw, scale_factor=(1.0, 1.0),
                            batch_input_shape=hw, pad_shape=hw))
        model.architecture.predict(x, [s])
    else:
        model.architecture(x, mode='tensor')


def ideal_bytes(sidecar: dict, path: str) -> float:
    import onnx
    inits = {t.name: t for t in onnx.load(path).graph.initializer}
    return sum(float(np.prod(inits[e['weight_initializer']].dims)) * e['w_bits'] / 8
               for e in sidecar['layers'].values())


def op_report(path: str) -> dict:
    ops = fused_ops(path)
    return dict(integer={k: ops[k] for k in INTEGER_OPS if ops[k]},
                float={k: ops[k] for k in FLOAT_OPS if ops[k]})


def side_by_side(paths: dict, feeds: dict, runs: int, threads: int) -> dict:
    """Median latency of each graph and the median per-round ratio of each to float."""
    sessions = {k: session(p, threads=threads) for k, p in paths.items()}
    times = {k: [] for k in sessions}
    for s in sessions.values():
        s.run(None, feeds)  # warm-up
    for _ in range(runs):
        for k, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, feeds)
            times[k].append(time.perf_counter() - t0)
    out = {f'{k}_ms': 1e3 * statistics.median(v) for k, v in times.items()}
    for k in paths:
        if k != 'float':
            out[f'{k}_ratio'] = statistics.median(
                [q / f for q, f in zip(times[k], times['float'])])
    return out


def export_variants(model, root: str, name: str, shape, calibration: dict, graph='full',
                    dynamic_batch=False) -> dict:
    """The float graph, the quantized graph as the fake-quant model computes it, and the
    quantized graph with 8-bit requantized outputs (calibrated on ``calibration``)."""
    paths, sizes = {}, {}
    variants = (('quantized', True, None), ('requantized', True, [calibration]),
                ('float', False, None))
    for kind, quantized, feeds in variants:
        out = osp.join(root, f'{name}_{kind}')
        t0 = time.perf_counter()
        sidecar = export_onnx(model, out, shape, quantized=quantized, graph=graph,
                              dynamic_batch=dynamic_batch, requantize_feeds=feeds)
        paths[kind] = osp.join(out, 'model.onnx')
        sizes[f'{kind}_bytes'] = osp.getsize(paths[kind])
        print(f'[bench_onnx] exported {name} ({kind}) in {time.perf_counter() - t0:.0f} s',
              flush=True)
        if kind == 'quantized':
            sizes['ideal_weight_bytes'] = ideal_bytes(sidecar, paths[kind])
        if kind == 'requantized':
            sizes['requantized_outputs'] = len(sidecar['requantized_outputs'])
    sizes['size_ratio'] = sizes['quantized_bytes'] / sizes['float_bytes']
    return dict(paths=paths, sizes=sizes)


def _ops(paths: dict) -> dict:
    return {k: op_report(paths[k]) for k in ('quantized', 'requantized')}


def _random(shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def bench_classifier(args, root: str) -> list:
    model = build(RESNET50, 'mmpretrain')
    calibrate(model, (2, 3, 224, 224), False)
    pair = export_variants(model, root, 'resnet50', (1, 3, 224, 224),
                           {'input': _random((4, 3, 224, 224), 1)}, dynamic_batch=True)
    rows = []
    for batch in args.batches:
        print(f'[bench_onnx] timing ResNet-50 batch {batch}', flush=True)
        rows.append(dict(model='ResNet-50 224px', batch=batch, graph='whole',
                         **side_by_side(pair['paths'], {'input': _random((batch, 3, 224, 224), 0)},
                                        args.runs, args.threads),
                         **pair['sizes'], ops=_ops(pair['paths'])))
    return rows


def bench_detector(args, root: str) -> list:
    h, w = args.det_size
    model = build(DETECTOR, 'mmdet')
    calibrate(model, (1, 3, h, w), True)
    rows = []
    for graph in ('features', 'full'):
        pair = export_variants(model, root, f'faster_rcnn_{graph}', (1, 3, h, w),
                               {'input': _random((1, 3, h, w), 1)}, graph=graph)
        print(f'[bench_onnx] timing Faster R-CNN ({graph})', flush=True)
        rows.append(dict(model=f'Faster R-CNN R50-FPN {h}x{w}', batch=1,
                         graph='backbone + neck' if graph == 'features' else 'whole',
                         **side_by_side(pair['paths'], {'input': _random((1, 3, h, w), 0)},
                                        args.runs, args.threads),
                         **pair['sizes'], ops=_ops(pair['paths'])))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--runs', type=int, default=7)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batches', type=int, nargs='+', default=[1, 32])
    p.add_argument('--det-size', type=int, nargs=2, default=[800, 1344], metavar=('H', 'W'))
    p.add_argument('--skip-detector', action='store_true')
    p.add_argument('--skip-classifier', action='store_true')
    p.add_argument('--json', help='also write the report here')
    args = p.parse_args()
    if args.runs < 1 or min(args.batches) < 1 or args.threads < 1:
        raise SystemExit('--runs, --batches and --threads must be >= 1')
    rows = []
    with tempfile.TemporaryDirectory(prefix='bench_onnx_') as root:
        if not args.skip_classifier:
            rows += bench_classifier(args, root)
        if not args.skip_detector:
            rows += bench_detector(args, root)
    print(f'\n{"model":30s} {"graph":15s} {"batch":>5s} {"float ms":>9s} {"quant ms":>9s} '
          f'{"ratio":>6s} {"requant ms":>10s} {"ratio":>6s} {"size":>6s}')
    for r in rows:
        print(f'{r["model"]:30s} {r["graph"]:15s} {r["batch"]:5d} {r["float_ms"]:9.1f} '
              f'{r["quantized_ms"]:9.1f} {r["quantized_ratio"]:6.2f} {r["requantized_ms"]:10.1f} '
              f'{r["requantized_ratio"]:6.2f} {r["size_ratio"]:6.3f}')
    print('\ninteger / float kernels after onnxruntime\'s optimizations:')
    for r in rows:
        for k, ops in r['ops'].items():
            print(f'  {r["model"]} {r["graph"]} batch {r["batch"]} {k}: {ops["integer"]} / '
                  f'{ops["float"]}')
    if args.json:
        os.makedirs(osp.dirname(osp.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(rows, f, indent=1)


if __name__ == '__main__':
    main()
