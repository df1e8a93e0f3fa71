"""tools/search_budgets.py on the ResNet20 search config at a tiny size: one supernet,
one valid file per budget, the weights shared and frozen."""
import json
import os
import subprocess
import sys

import torch

from bpnas_mm.export import load_mixed_precision

from .conftest import ROOT, run_tool

SEARCH = 'configs/bpnas/bpnas_resnet20_cifar10_search_b3.py'
RETRAIN = 'configs/bpnas/bpnas_resnet20_cifar10_retrain.py'


def _tiny(root):
    return ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=4',
            'train_cfg.search_dataloader.batch_size=4', 'val_dataloader.batch_size=4',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'train_cfg.search_dataloader.num_workers=0',
            'train_cfg.search_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
            'default_hooks.logger.interval=1', 'randomness.seed=0',
            f'train_dataloader.dataset.dataset.data_root={root}',
            f'train_cfg.search_dataloader.dataset.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}']


def _tiny_retrain(root):
    return ['train_dataloader.batch_size=4', 'val_dataloader.batch_size=4',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
            'randomness.seed=0', f'train_dataloader.dataset.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}']


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def test_one_supernet_one_file_per_budget(cifar_folder, tmp_path):
    work = str(tmp_path / 'budgets')
    budgets = [3.0, 4.5]
    out = run_tool('tools/search_budgets.py', SEARCH, '--budgets', *map(str, budgets),
                   '--work-dir', work, '--cfg-options', *_tiny(cifar_folder),
                   '--theta-mu', '0.01', '0.04', '--retrain', RETRAIN, '--retrain-epochs', '1',
                   '--retrain-options', *_tiny_retrain(cifar_folder))
    assert '| B_max | avg bits | inside |' in out
    assert 'accuracy/top1, retrained |' in out
    done = json.load(open(os.path.join(work, 'budgets.json')))
    assert [r['avg_bits_limit'] for r in done['results']] == budgets

    supernet = _state(os.path.join(work, 'supernet', 'supernet.pth'))
    theta = {k: v for k, v in supernet.items() if k.startswith('mutator.arch_params.')}
    assert len(theta) == 9 and all(torch.equal(v, torch.zeros_like(v)) for v in theta.values())
    # W steps only: no search to write, no architecture to log
    assert not os.path.exists(os.path.join(work, 'supernet', 'mixed_precision.json'))
    assert not os.path.exists(os.path.join(work, 'supernet', 'arch_history.jsonl'))

    starts = set()
    for b, r in zip(budgets, done['results']):
        mp = load_mixed_precision(os.path.join(work, f'mixed_precision_b{b:g}.json'))
        assert mp.extra['budget_avg_bits'] == b and mp.extra['inside_budget']
        assert mp.totals().avg_bits == r['avg_bits'] <= b
        assert set(r['metrics']) == {'accuracy/top1'} == set(r['retrained'])
        retrain = os.path.join(r['work_dir'], 'retrain')
        assert os.path.exists(os.path.join(retrain, 'epoch_1.pth'))
        assert not os.path.exists(os.path.join(retrain, 'epoch_2.pth'))  # --retrain-epochs 1
        history = [json.loads(line) for line in open(os.path.join(r['work_dir'],
                                                                   'arch_history.jsonl'))]
        assert history[-1]['probs'] == mp.extra['probabilities']
        assert all(0.01 <= h['mu'] <= 0.04 for h in history)  # --theta-mu, not 0.05 to 0.2
        starts.add(round(history[0]['expected_bits'], 6))
        # theta steps only: every weight and clip is the supernet's, theta is its own
        final = _state(os.path.join(r['work_dir'], 'epoch_1.pth'))
        for key, value in supernet.items():
            if key.startswith('mutator.'):
                assert not torch.equal(final[key], value)
            elif not key.endswith(('running_mean', 'running_var', 'num_batches_tracked')):
                assert torch.equal(final[key], value), key
    assert len(starts) == 2  # each budget started at its own feasible start
    assert os.path.getsize(os.path.join(work, 'accuracy_top1_vs_avg_bits.png')) > 1000
    assert '| 4.5 |' in open(os.path.join(work, 'budgets.md')).read()


def test_a_budget_out_of_reach_is_refused_before_any_training(cifar_folder, tmp_path):
    work = str(tmp_path / 'refused')
    proc = subprocess.run([sys.executable, 'tools/search_budgets.py', SEARCH, '--budgets', '3',
                           '9', '--work-dir', work, '--cfg-options', *_tiny(cifar_folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'error: --budgets 9: B_max = 9.0 average bits is outside' in proc.stderr
    assert not os.path.exists(work)  # nothing half-written


def test_a_search_config_is_refused_as_the_retrain_config(tmp_path):
    work = str(tmp_path / 'refused')
    proc = subprocess.run([sys.executable, 'tools/search_budgets.py', SEARCH, '--budgets', '3',
                           '--work-dir', work, '--retrain', SEARCH],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert ("error: --retrain: model.type is 'bpnas_mm.BPNAS'; a retrain config is a "
            "fixed-precision one") in proc.stderr
    assert not os.path.exists(work)


def test_a_bad_theta_mu_is_refused_before_any_training(tmp_path):
    work = str(tmp_path / 'refused')
    proc = subprocess.run([sys.executable, 'tools/search_budgets.py', SEARCH, '--budgets', '3',
                           '--work-dir', work, '--theta-mu', '0', '0.1'],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert 'error: --theta-mu: [0.0, 0.1] is not START END, two positive' in proc.stderr
    assert not os.path.exists(work)


def test_repeated_budgets_are_refused(tmp_path):
    proc = subprocess.run([sys.executable, 'tools/search_budgets.py', SEARCH, '--budgets', '3',
                           '3.0', '--work-dir', str(tmp_path / 'x')],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert 'error: --budgets: 3 is given twice' in proc.stderr
