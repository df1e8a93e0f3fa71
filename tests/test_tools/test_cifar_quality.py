"""The CIFAR-10 quality benchmark end to end at a toy size (needs ../shared)."""
import json
import os

import pytest

from .conftest import SHARED, run_tool

DATA = os.path.join(SHARED, 'data', 'cifar10')
WEIGHTS = os.path.join(SHARED, 'weights', 'resnet20-12fca82f.th')


@pytest.mark.skipif(not (os.path.isdir(DATA) and os.path.isfile(WEIGHTS)),
                    reason='../shared CIFAR-10 data or ResNet20 weights not present')
def test_toy_run_writes_table_json_and_plot(tmp_path, cifar_folder):
    work = str(tmp_path / 'cq')
    # real weights, tiny generated data: the mechanics, not the accuracy
    out = run_tool('tools/benchmark/cifar_quality.py', '--data-root', cifar_folder,
                   '--weights', WEIGHTS, '--work-dir', work, '--seeds', '0', '--lambdas', '1.0',
                   '--search-epochs', '1', '--search-images', '8', '8', '--retrain-epochs', '1',
                   '--retrain-images', '8', '--batch', '4', timeout=1200)
    assert '| method | top-1 (%)' in out
    rows = json.load(open(os.path.join(work, 'results.json')))['rows']
    assert [r['method'].split()[0] for r in rows] == ['BP-NAS', 'DNAS', 'uniform']
    bpnas = rows[0]
    assert bpnas['inside_budget'] and bpnas['avg_bits'] <= 3.0
    assert rows[2]['avg_bits'] == pytest.approx(3.0)
    assert os.path.getsize(os.path.join(work, 'top1_vs_avg_bits.png')) > 1000
    md = open(os.path.join(work, 'results.md')).read()
    assert 'cifar_quality.py' in md
    diff = rows[0]['top1'] - rows[2]['top1']
    assert f'seed 0: {diff:+.2f}' in md  # the paired BP-NAS - W3A3 summary
