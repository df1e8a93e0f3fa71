"""One search iteration of the fully quantized Faster R-CNN R50-FPN against one float
training iteration, measured side by side (time and peak memory), batch 1, CPU.

    python tools/benchmark/bench_detection.py [--size 800 1333] [--iters 7]
        [--default-malloc] [--threads 2] [--json OUT.json]

The search iteration is Algorithm 1's: a W step and a theta step, path sampling
(configs/bpnas_faster_rcnn_r50.py). Memory: each mode runs alone in its own
process so that its peak resident memory can be read; one warm-up step (with
the quantizers' one-time calibration) comes first, then the kernel's peak count
is reset and a timed step is measured. Time: one more process holds both
models and alternates a float step and a search step, ``--iters`` rounds after
a warm-up of each; the ratio is the median of the rounds' ratios (on a shared
2-core machine, timings taken minutes apart drifted by 15-50 %). The script
prints both modes and the ratios (targets: time <= 2.0x, memory <= 1.5x).

Both modes run as ``tools/train.py`` and the search loop run them: with
:func:`bpnas_mm.utils.keep_freed_memory` (glibc serves every block from its
heap and keeps freed memory for reuse). ``--default-malloc`` measures glibc's
defaults instead: every block over 32 MB (a 256-channel map at 200x336 is
69 MB) is mapped fresh from the kernel and returned when freed, so each use
pays its page faults again; on these VMs that is a quarter of a CPU training
step, float or search.
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


def build_step(mode, size):
    """A function running one training iteration of ``mode`` ('float' or 'search')."""
    import torch
    from mmengine.config import Config
    from mmengine.optim import OptimWrapper
    from mmengine.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData

    from bpnas_mm.engine import BPNASOptimWrapperConstructor

    torch.manual_seed(0)
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
    return step


def timed(step, faults=None) -> float:
    """Seconds of one ``step()``; its minor page faults appended to ``faults``."""
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    step()
    seconds = time.perf_counter() - t0
    if faults is not None:
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
    return seconds


def worker(mode, size, iters, threads):
    """Print one JSON line: peak memory of ``mode`` alone, or ('pair') the
    interleaved times of both modes in one process."""
    import torch
    from mmengine.registry import init_default_scope

    import bpnas_mm  # noqa: F401
    from bpnas_mm.utils import keep_freed_memory

    keep_freed_memory()  # a no-op under --default-malloc (the variable below)
    torch.set_num_threads(threads)
    init_default_scope('mmdet')
    if mode == 'pair':  # float and search steps alternate: slow drifts of the machine cancel
        steps = {m: build_step(m, size) for m in ('float', 'search')}
        for step in steps.values():
            step()  # warm-up (and the quantizers' one-time calibration)
        faults = {m: [] for m in steps}
        rounds = [{m: timed(step, faults[m]) for m, step in steps.items()}
                  for _ in range(iters)]
        print(json.dumps(dict(
            mode=mode, rounds=rounds, minor_page_faults=faults,
            time_ratio=statistics.median(r['search'] / r['float'] for r in rounds),
            seconds={m: statistics.median(r[m] for r in rounds) for m in steps})))
        return
    step = build_step(mode, size)
    step()  # warm-up (and the quantizers' one-time calibration)
    warmup_peak = peak_rss_mb()
    before = rss_mb()
    steady = reset_peak_rss()
    seconds = statistics.median(timed(step) for _ in range(iters))
    print(json.dumps(dict(mode=mode, seconds=seconds, peak_rss_mb=peak_rss_mb(),
                          peak_is_steady_state=steady, warmup_peak_rss_mb=warmup_peak,
                          rss_before_steps_mb=before)))


def run_worker(mode, args, iters):
    print(f'running {mode} ...', flush=True)
    env = dict(os.environ, BPNAS_MM_KEEP_FREED_MEMORY='0' if args.default_malloc else '1')
    out = subprocess.run([sys.executable, __file__, '--worker', mode, '--iters', str(iters),
                          '--threads', str(args.threads), '--size', *map(str, args.size)],
                         capture_output=True, text=True, cwd=ROOT, env=env)
    if out.returncode:
        sys.exit(out.stdout[-3000:] + out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--size', type=int, nargs=2, default=[800, 1333], metavar=('H', 'W'))
    p.add_argument('--iters', type=int, default=7,
                   help='interleaved timing rounds (~1 min each at 800x1333; single '
                        'rounds vary by +-10 %%)')
    p.add_argument('--mem-iters', type=int, default=1,
                   help='timed steps of each memory process (after its warm-up)')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--default-malloc', action='store_true',
                   help="glibc's default malloc settings (see above); both modes")
    p.add_argument('--json', help='also write the results here')
    p.add_argument('--worker', choices=['float', 'search', 'pair'], help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        return worker(args.worker, args.size, args.iters, args.threads)
    results = {mode: run_worker(mode, args, args.mem_iters) for mode in ('float', 'search')}
    pair = run_worker('pair', args, args.iters)
    f, s = results['float'], results['search']
    t_ratio = pair['time_ratio']
    m_ratio = s['peak_rss_mb'] / f['peak_rss_mb']
    print(f'\nFaster R-CNN R50-FPN, {args.size[0]}x{args.size[1]}, batch 1, '
          f'{args.threads} threads, allocator: '
          f'{"glibc defaults" if args.default_malloc else "glibc keeping freed memory"}')
    print(f'time, {args.iters} interleaved rounds in one process (median): float '
          f'{pair["seconds"]["float"]:.2f} s/iter, search {pair["seconds"]["search"]:.2f} s/iter')
    faults = {m: statistics.median(v) for m, v in pair['minor_page_faults'].items()}
    print(f'minor page faults per iteration (median): float {faults["float"]:.0f}, '
          f'search {faults["search"]:.0f}')
    for mode, r in results.items():
        print(f'{mode:>7} alone: peak RSS over the timed steps {r["peak_rss_mb"]:.0f} MB '
              f'(at their start {r["rss_before_steps_mb"]:.0f} MB; peak over the warm-up step '
              f'with its calibration {r["warmup_peak_rss_mb"]:.0f} MB), {r["seconds"]:.2f} s/iter')
        if not r['peak_is_steady_state']:
            print('         (could not reset the peak count: the peak includes the warm-up)')
    print(f'time ratio search/float (median of the rounds\' ratios): {t_ratio:.2f}x '
          f'(target <= 2.0: {"met" if t_ratio <= 2.0 else "NOT met"})')
    print(f'peak memory ratio search/float: {m_ratio:.2f}x (target <= 1.5: '
          f'{"met" if m_ratio <= 1.5 else "NOT met"})')
    if args.json:
        with open(args.json, 'w') as fh:
            json.dump(dict(results=results, interleaved=pair, time_ratio=t_ratio,
                           memory_ratio=m_ratio, size=args.size, threads=args.threads,
                           keep_freed_memory=not args.default_malloc), fh,
                      indent=2)


if __name__ == '__main__':
    main()
