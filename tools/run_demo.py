"""The README's demo: search -> searched file + BOPs report -> retrain -> CocoMetric.

    python tools/run_demo.py [--work-root work_dirs]

Runs, as separate commands a user would type, the detection flow of
configs/bpnas_faster_rcnn_r50.py at demo size (configs/demo/, ResNet-18 FPN,
320 px, the bundled 5-category COCO128 subset): a short BP-NAS search, the BOPs
report of the searched configuration, a short retrain seeded with the
supernet's weights and a COCO evaluation. A few minutes on 2 CPU cores. The
numbers prove the plumbing, not the method: mAP needs real data and hours.
"""
import argparse
import os
import subprocess
import sys
import time

from bpnas_mm.export import load_mixed_precision

SEARCH = 'configs/demo/bpnas_faster_rcnn_r18_demo.py'
RETRAIN = 'configs/demo/bpnas_faster_rcnn_r18_demo_retrain.py'


def run(step, cmd):
    print(f'\n=== {step}\n$ {" ".join(cmd)}', flush=True)
    t0 = time.time()
    subprocess.run([sys.executable, *cmd], check=True)
    print(f'=== {step}: done in {time.time() - t0:.0f} s', flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument('--work-root', default='work_dirs')
    args = p.parse_args(argv)
    search_dir = os.path.join(args.work_root, 'bpnas_faster_rcnn_r18_demo')
    retrain_dir = os.path.join(args.work_root, 'bpnas_faster_rcnn_r18_demo_retrain')
    mp_file = os.path.join(search_dir, 'mixed_precision.json')
    report = os.path.join(search_dir, 'bops_report.json')
    t0 = time.time()
    run('1/4 BP-NAS search (fully quantized Faster R-CNN, path sampling, B_max = 4)',
        ['tools/train.py', SEARCH, '--work-dir', search_dir])
    retrain_opts = ['--cfg-options', f'model.mixed_precision={mp_file}',
                    f'model.supernet_checkpoint={os.path.join(search_dir, "epoch_3.pth")}']
    run('2/4 BOPs report of the searched configuration',
        ['tools/analysis/bops_report.py', RETRAIN, '--json', report, *retrain_opts])
    run('3/4 retrain the searched mixed-precision detector (evaluates with CocoMetric)',
        ['tools/train.py', RETRAIN, '--work-dir', retrain_dir, *retrain_opts])
    run('4/4 plots of the search',
        ['tools/analysis/plot_search.py', search_dir])
    mp = load_mixed_precision(mp_file)
    print('\n=== demo finished in %.0f s' % (time.time() - t0))
    print(f'searched file : {os.path.abspath(mp_file)}')
    print(f'  avg bits {mp.extra["avg_bits"]:.4f} <= budget {mp.extra["budget_avg_bits"]} '
          f'(repaired: {mp.extra["repaired"]}), B-Comp {mp.totals().b_comp:.2f}x')
    print(f'BOPs report   : {os.path.abspath(report)}')
    print(f'plots         : {os.path.abspath(search_dir)}/importance_factors.png, '
          f'expected_bits.png')
    print(f'retrain logs  : {os.path.abspath(retrain_dir)} (CocoMetric at the end of the log)')
    print('Note: a 3-epoch search on 32 images proves the plumbing; mAP needs real data and '
          'real training time.')


if __name__ == '__main__':
    main()
