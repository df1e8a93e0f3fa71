"""The detection benchmark runs end to end at a toy size: its ratios are the ratios
of the numbers it reports (their size is not checked: a toy size on a shared machine)."""
import json

from .conftest import run_tool


def test_bench_detection_toy_size(tmp_path):
    out_json = tmp_path / 'bench.json'
    out = run_tool('tools/benchmark/bench_detection.py', '--size', '96', '128', '--iters', '1',
                   '--threads', '1', '--json', str(out_json))
    assert 'time ratio search/float' in out and 'peak memory ratio' in out
    assert 'allocator: glibc keeping freed memory' in out
    res = json.load(open(out_json))
    for mode in ('float', 'search'):
        r = res['results'][mode]
        assert r['seconds'] > 0 and r['peak_rss_mb'] > 0 and r['warmup_peak_rss_mb'] > 0
    pair = res['interleaved']  # the time ratio: both models, steps alternating in one process
    assert len(pair['rounds']) == 1 and set(pair['rounds'][0]) == {'float', 'search'}
    assert res['time_ratio'] == pair['time_ratio'] > 0 and res['memory_ratio'] > 0
    only = pair['rounds'][0]  # one round: the median is its ratio
    assert pair['time_ratio'] == only['search'] / only['float']
    assert pair['seconds'] == only
    peaks = {m: res['results'][m]['peak_rss_mb'] for m in ('float', 'search')}
    assert res['memory_ratio'] == peaks['search'] / peaks['float']
    assert f'{res["time_ratio"]:.2f}x' in out and f'{res["memory_ratio"]:.2f}x' in out
    assert res['keep_freed_memory'] is True
    assert set(pair['minor_page_faults']) == {'float', 'search'}
    assert 'minor page faults per iteration' in out


def test_bench_supernet_runs_the_supernet_it_names(tmp_path):
    """Tiny size; the script itself refuses a supernet mode whose theta got no gradient
    (a step outside the mutator's context runs no supernet at all)."""
    out_json = tmp_path / 'bench.json'
    run_tool('tools/benchmark/bench_supernet.py', '--batch', '2', '--iters', '1', '--warmup',
             '1', '--threads', '1', '--json', str(out_json))
    res = json.load(open(out_json))
    s = res['seconds']
    assert set(s) == {'float', 'qat', 'naive', 'composite', 'sampled'}
    assert res['ratios']['composite / qat'] == s['composite'] / s['qat']
    assert res['ratios']['naive / composite'] == s['naive'] / s['composite']
