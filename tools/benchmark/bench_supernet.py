"""Time one training step of ResNet20 (CIFAR, batch 128, CPU) in five modes, side by side.

    python tools/benchmark/bench_supernet.py [--batch 128] [--iters 5] [--threads 2]
        [--device cpu|cuda]

Modes: float; single-candidate QAT (W4A4); supernet with the naive Eq. 6 sum
(8 convolutions per layer); supernet with the exact composite form (one per
activation width); sampled path (one candidate per group). A step is forward,
backward (theta included for the supernets) and an SGD update. Prints
median seconds per step and the ratios the project targets.
"""
import argparse
import contextlib
import copy
import json
import statistics
import time

import torch
from mmengine.registry import MODELS, init_default_scope

import bpnas_mm  # noqa: F401

CANDS = [(2, 3), (2, 4), (3, 3), (3, 4), (4, 4), (4, 6), (6, 4), (8, 4)]
ARCH = dict(type='ImageClassifier',
            backbone=dict(type='bpnas_mm.ResNetCIFAR', depth=20),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
                      loss=dict(type='CrossEntropyLoss')))
FIXED = [dict(layers=['backbone.conv1', 'head.fc'], w_bits=8, a_bits=8)]


def build(mode):
    init_default_scope('mmpretrain')
    if mode in ('float', 'qat'):
        bits = 32 if mode == 'float' else 4
        fixed = [] if mode == 'float' else FIXED
        return MODELS.build(dict(type='bpnas_mm.QuantModel', architecture=copy.deepcopy(ARCH),
                                 quant=dict(w_bits=bits, a_bits=bits, fixed=fixed)))
    model = MODELS.build(dict(
        type='bpnas_mm.BPNAS', architecture=copy.deepcopy(ARCH), candidates=CANDS, budget=3.0,
        quant=dict(fixed=FIXED), grouping=[r'(backbone\.layer\d\.\d+)\.'],
        search=dict(mode='sample' if mode == 'sampled' else 'composite')))
    if mode == 'naive':
        for layer in model.qlayers.values():
            if hasattr(layer, 'naive_forward'):
                layer.composite_forward = layer.naive_forward
    return model


def step_fn(model, mode):
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.SGD(params, lr=1e-3, momentum=0.9)

    searched = mode not in ('float', 'qat')

    def step(x, y):
        probs, choice = model._arch_for_training(with_grad=True) if searched else (None, None)
        with model.mutator.applied(probs, choice) if searched else contextlib.nullcontext():
            logits = model.architecture.head.fc(
                model.architecture.neck(model.architecture.backbone(x))[-1])
        loss = torch.nn.functional.cross_entropy(logits, y)
        optim.zero_grad()
        loss.backward()
        if searched and not all(p.grad is not None and p.grad.abs().sum() > 0
                                for p in model.arch_params.parameters()):
            raise RuntimeError(f'{mode}: theta got no gradient: the supernet did not run')
        optim.step()
    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--batch', type=int, default=128)
    p.add_argument('--iters', type=int, default=5)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--device', default='cpu', help="'cpu' or 'cuda' (a GPU check)")
    p.add_argument('--json', help='also write the results here')
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = torch.device(args.device)
    x = torch.randn(args.batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)

    def sync():
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
    times = {}
    for mode in ('float', 'qat', 'naive', 'composite', 'sampled'):
        model = build(mode).to(device).train()
        step = step_fn(model, mode)
        for _ in range(args.warmup):
            step(x, y)
        samples = []
        for _ in range(args.iters):
            sync()
            t0 = time.perf_counter()
            step(x, y)
            sync()
            samples.append(time.perf_counter() - t0)
        times[mode] = statistics.median(samples)
        print(f'{mode:>10}: {times[mode]:.3f} s/step (median of {args.iters})', flush=True)
    ratios = {
        'qat / float': (times['qat'] / times['float'], 1.6),
        'naive / qat': (times['naive'] / times['qat'], None),
        'composite / qat': (times['composite'] / times['qat'], 3.0),
        'sampled / qat': (times['sampled'] / times['qat'], 1.5),
        'naive / composite': (times['naive'] / times['composite'], None),
    }
    where = f'{args.threads} threads' if device.type == 'cpu' else str(device)
    print(f'\nResNet20, batch {args.batch}, {where}, 8 CIFAR candidates')
    for name, (value, target) in ratios.items():
        verdict = '' if target is None else (f'  target <= {target}: '
                                             + ('met' if value <= target else 'NOT met'))
        print(f'{name:>18}: {value:.2f}x{verdict}')
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(dict(seconds=times, ratios={k: v for k, (v, _) in ratios.items()},
                           batch=args.batch, threads=args.threads, device=args.device), f,
                      indent=2)


if __name__ == '__main__':
    main()
