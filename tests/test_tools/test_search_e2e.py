"""The ResNet20 search config through tools/train.py at a tiny size, then retrain."""
import json
import os

import torch

from .conftest import run_tool

SEARCH = 'configs/bpnas/bpnas_resnet20_cifar10_search_b3.py'
RETRAIN = 'configs/bpnas/bpnas_resnet20_cifar10_retrain.py'


def _tiny(root, epochs):
    return ['train_cfg.max_epochs=%d' % epochs, 'train_dataloader.batch_size=4',
            'train_cfg.search_dataloader.batch_size=4', 'val_dataloader.batch_size=4',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
            'train_cfg.search_dataloader.num_workers=0',
            'train_cfg.search_dataloader.persistent_workers=False',
            'val_dataloader.num_workers=0', 'val_dataloader.persistent_workers=False',
            'train_cfg.val_interval=1', 'default_hooks.logger.interval=1',
            'default_hooks.checkpoint.interval=1', 'custom_hooks.1.interval=1',
            'custom_hooks.2.interval=1', 'randomness.seed=0',
            f'train_dataloader.dataset.dataset.data_root={root}',
            f'train_cfg.search_dataloader.dataset.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}']


def test_search_resume_export_and_retrain(cifar_folder, tmp_path):
    work = str(tmp_path / 'search')
    run_tool('tools/train.py', SEARCH, '--work-dir', work, '--cfg-options', *_tiny(cifar_folder, 1))
    ck1 = torch.load(os.path.join(work, 'epoch_1.pth'), map_location='cpu', weights_only=True)
    theta1 = {k: v for k, v in ck1['state_dict'].items() if k.startswith('mutator.arch_params.')}
    assert len(theta1) == 9  # one theta per BasicBlock
    assert set(ck1['optimizer']) == {'architecture', 'arch_params'}
    out = run_tool('tools/train.py', SEARCH, '--work-dir', work, '--resume', '--cfg-options',
                   *_tiny(cifar_folder, 2))
    assert 'resumed epoch: 1' in out
    ck2 = torch.load(os.path.join(work, 'epoch_2.pth'), map_location='cpu', weights_only=True)
    # resumed from epoch 1's theta and Adam state, and moved on from there
    adam_steps = ck2['optimizer']['arch_params']['state'][0]['step']
    assert int(adam_steps) == 2 * int(ck1['optimizer']['arch_params']['state'][0]['step'])
    assert any(not torch.equal(theta1[k], ck2['state_dict'][k]) for k in theta1)

    mp_path = os.path.join(work, 'mixed_precision.json')
    mp = json.load(open(mp_path))
    assert mp['avg_bits'] <= mp['budget_avg_bits'] == 3.0
    assert os.path.isfile(os.path.join(work, 'mixed_precision_epoch_2.json'))
    history = [json.loads(line) for line in open(os.path.join(work, 'arch_history.jsonl'))]
    assert len(history) >= 2 and all(2.4495 < h['expected_bits'] < 5.6569 for h in history)
    # the last record is the state the file was written from: same probabilities and bits
    assert history[-1]['probs'] == mp['probabilities']
    assert history[-1]['sampled_bits'] == mp['avg_bits']
    assert history[-1]['expected_bits'] == mp['expected_bits']
    png_dir = str(tmp_path / 'plots')
    run_tool('tools/analysis/plot_search.py', work, '--out-dir', png_dir)
    for png in ('importance_factors.png', 'expected_bits.png'):
        with open(os.path.join(png_dir, png), 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'  # a PNG ...
        assert os.path.getsize(os.path.join(png_dir, png)) > 1000

    # retrain from the file, seeded with the supernet's shared weights
    retrain = str(tmp_path / 'retrain')
    opts = [o.replace('train_cfg.search_dataloader', 'val_dataloader') for o in
            _tiny(cifar_folder, 1) if 'custom_hooks' not in o and 'search_dataloader' not in o]
    run_tool('tools/train.py', RETRAIN, '--work-dir', retrain, '--cfg-options', *opts,
             f'model.mixed_precision={mp_path}',
             f'model.supernet_checkpoint={os.path.join(work, "epoch_2.pth")}',
             f'test_dataloader.dataset.data_root={cifar_folder}')
    ck = torch.load(os.path.join(retrain, 'epoch_1.pth'), map_location='cpu', weights_only=True)
    assert not any(k.startswith('architecture.') and '_quants.' in k for k in ck['state_dict'])


def test_killed_and_resumed_search_equals_the_uninterrupted_one(cifar_folder, tmp_path):
    """SIGKILL after epoch 1's checkpoint, --resume: the same theta, file and history."""
    import signal
    import subprocess
    import sys
    import time

    from .conftest import ROOT
    opts = _tiny(cifar_folder, 2) + ['randomness.deterministic=True']
    whole, killed = str(tmp_path / 'whole'), str(tmp_path / 'killed')
    run_tool('tools/train.py', SEARCH, '--work-dir', whole, '--cfg-options', *opts)
    proc = subprocess.Popen([sys.executable, 'tools/train.py', SEARCH, '--work-dir', killed,
                             '--cfg-options', *opts], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    marker = os.path.join(killed, 'last_checkpoint')
    deadline = time.time() + 300
    while not (os.path.isfile(marker) and open(marker).read().endswith('epoch_1.pth')):
        assert proc.poll() is None and time.time() < deadline, 'the search ended before the kill'
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not os.path.exists(os.path.join(killed, 'epoch_2.pth'))  # killed within epoch 2
    out = run_tool('tools/train.py', SEARCH, '--work-dir', killed, '--resume', '--cfg-options',
                   *opts)
    assert 'resumed epoch: 1' in out

    def state(work):
        ck = torch.load(os.path.join(work, 'epoch_2.pth'), map_location='cpu', weights_only=True)
        theta = {k: v for k, v in ck['state_dict'].items() if k.startswith('mutator.arch_params.')}
        mp = json.load(open(os.path.join(work, 'mixed_precision.json')))
        history = open(os.path.join(work, 'arch_history.jsonl')).read().splitlines()
        return theta, mp, history
    (t1, mp1, h1), (t2, mp2, h2) = state(whole), state(killed)
    assert t1.keys() == t2.keys() and all(torch.equal(t1[k], t2[k]) for k in t1)
    assert mp1 == mp2
    iters = [json.loads(line)['iter'] for line in h2]
    assert h1 == h2 and len(iters) == len(set(iters))  # no iteration logged twice
