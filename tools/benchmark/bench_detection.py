"""One search iteration of the fully quantized Faster R-CNN R50-FPN against one float
training iteration, measured side by side (time and peak memory), batch 1, CPU.

    python tools/benchmark/bench_detection.py [--size 800 1333] [--iters 3] [--threads 2]

The search iteration is Algorithm 1's: a W step and a theta step, path sampling
(configs/bpnas_faster_rcnn_r50.py). Each mode runs in its own process so that
its peak resident memory can be read; one warm-up step (with the quantizers'
one-time calibration) comes first, then the kernel's peak count is reset and
the timed steps are measured. The script prints both modes and the ratios
(targets: time <= 2.0x, memory <= 1.5x).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))


def rss_mb() -> float:
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20


def reset_peak_rss() -> bool:
    """Restart the kernel's peak-RSS count (VmHWM) from the current RSS (Linux)."""
    try:
        with open('/proc/self/clear_refs', 'w') as f:
            f.write('5')
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """VmHWM: the peak resident memory since the start or the last reset."""
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(mode, size, iters, threads):
    import torch
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import MODELS, init_default_scope
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    import bpnas_mm  # noqa: F401
    from bpnas_mm.engine import BPNASOptimWrapperConstructor

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    init_default_scope('mmdet')
    if mode == 'float':
        cfg = Config.fromfile(os.path.join(ROOT, 'configs/quant/faster_rcnn_r50_fpn_w4a4_coco5.py'))
        model = MODELS.build(cfg.model.architecture)
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9))
    else:
        cfg = Config.fromfile(os.path.join(ROOT, 'configs/bpnas_faster_rcnn_r50.py'))
        model = MODELS.build(cfg.model)
        optim = BPNASOptimWrapperConstructor(dict(
            architecture=dict(optimizer=dict(type='SGD', lr=1e-4, momentum=0.9)),
            arch_params=dict(optimizer=dict(type='Adam', lr=5e-3))))(model)
    model.train()
    h, w = size
    g = torch.Generator().manual_seed(0)

    def batch():
        sample = DetDataSample()
        sample.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), scale_factor=(1.0, 1.0)))
        boxes = torch.tensor([[50., 60., 300., 400.], [400., 100., 700., 500.],
                              [10., 10., 120., 90.]])
        sample.gt_instances = InstanceData(bboxes=boxes, labels=torch.tensor([0, 1, 3]))
        img = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
        return dict(inputs=[img], data_samples=[sample])

    def step():
        data = batch()
        if mode == 'float':
            model.train_step(data, optim)
        else:
            model.train_step(dict(train=data, search=batch()), optim)

    step()  # warm-up (and the quantizers' one-time calibration)
    warmup_peak = peak_rss_mb()
    before = rss_mb()
    steady = reset_peak_rss()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps(dict(mode=mode, seconds=statistics.median(times), peak_rss_mb=peak_rss_mb(),
                          peak_is_steady_state=steady, warmup_peak_rss_mb=warmup_peak,
                          rss_before_steps_mb=before)))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--size', type=int, nargs=2, default=[800, 1333], metavar=('H', 'W'))
    p.add_argument('--iters', type=int, default=3)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--json', help='also write the results here')
    p.add_argument('--worker', choices=['float', 'search'], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.size, args.iters, args.threads)
    results = {}
    for mode in ('float', 'search'):
        print(f'running {mode} ...', flush=True)
        out = subprocess.run([sys.executable, __file__, '--worker', mode, '--iters',
                              str(args.iters), '--threads', str(args.threads), '--size',
                              *map(str, args.size)], capture_output=True, text=True, cwd=ROOT)
        if out.returncode:
            sys.exit(out.stdout[-3000:] + out.stderr[-3000:])
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    f, s = results['float'], results['search']
    t_ratio = s['seconds'] / f['seconds']
    m_ratio = s['peak_rss_mb'] / f['peak_rss_mb']
    print(f'\nFaster R-CNN R50-FPN, {args.size[0]}x{args.size[1]}, batch 1, '
          f'{args.threads} threads, median of {args.iters}')
    for mode, r in results.items():
        print(f'{mode:>7}: {r["seconds"]:.2f} s/iter, peak RSS over the timed steps '
              f'{r["peak_rss_mb"]:.0f} MB (at their start {r["rss_before_steps_mb"]:.0f} MB; '
              f'peak over the warm-up step with its calibration {r["warmup_peak_rss_mb"]:.0f} MB)')
        if not r['peak_is_steady_state']:
            print('         (could not reset the peak count: the peak includes the warm-up)')
    print(f'time ratio search/float: {t_ratio:.2f}x (target <= 2.0: '
          f'{"met" if t_ratio <= 2.0 else "NOT met"})')
    print(f'peak memory ratio search/float: {m_ratio:.2f}x (target <= 1.5: '
          f'{"met" if m_ratio <= 1.5 else "NOT met"})')
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump(dict(results=results, time_ratio=t_ratio, memory_ratio=m_ratio,
                           size=args.size, threads=args.threads), fh, indent=2)


if __name__ == '__main__':
    main()
