"""Real configs through tools/train.py and tools/test.py at a tiny size (CPU)."""
import glob
import json
import os
import re

import pytest
import torch

from .conftest import ROOT, SHARED, run_tool

TINY = ['train_cfg.max_epochs=1', 'train_dataloader.batch_size=4', 'val_dataloader.batch_size=4',
        'test_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
        'val_dataloader.num_workers=0', 'test_dataloader.num_workers=0',
        'train_dataloader.persistent_workers=False', 'val_dataloader.persistent_workers=False',
        'test_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1',
        'default_hooks.checkpoint.interval=1', 'train_cfg.val_interval=1']


def _data(root):
    return [f'train_dataloader.dataset.data_root={root}',
            f'val_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}']


@pytest.mark.parametrize('config', ['configs/quant/resnet20_cifar10_w4a4.py',
                                    'configs/quant/resnet20_cifar10_mp.py',
                                    'configs/quant/resnet20_cifar10_reshape_float.py'])
def test_train_resume_and_test_quantized_resnet20(cifar_folder, tmp_path, config):
    work = str(tmp_path / 'work')
    run_tool('tools/train.py', config, '--work-dir', work, '--cfg-options', *TINY,
             *_data(cifar_folder))
    ckpt = os.path.join(work, 'epoch_1.pth')
    assert os.path.isfile(ckpt)
    state = torch.load(ckpt, map_location='cpu', weights_only=True)['state_dict']
    alphas = [k for k in state if k.endswith('a_quant.alpha')]
    assert len(alphas) == 20  # every conv and the classifier
    # resume to a second epoch, then evaluate the result
    out = run_tool('tools/train.py', config, '--work-dir', work, '--resume', '--cfg-options',
                   *[o.replace('max_epochs=1', 'max_epochs=2') for o in TINY],
                   *_data(cifar_folder))
    assert 'resumed epoch: 1' in out
    metrics = str(tmp_path / 'metrics.json')
    run_tool('tools/test.py', config, os.path.join(work, 'epoch_2.pth'), '--work-dir', work,
             '--out', metrics, '--cfg-options', *TINY, *_data(cifar_folder))
    # the same checkpoint on the same images: what the training's last validation logged
    logged = re.findall(r'Epoch\(val\) \[2\]\[\d+/\d+\]\s+accuracy/top1: ([0-9.]+)', out)
    assert len(logged) == 1, out[-3000:]
    assert f'{json.load(open(metrics))["accuracy/top1"]:.4f}' == logged[0]


def test_bops_report_tool_writes_json(tmp_path):
    out_json = str(tmp_path / 'r.json')
    out = run_tool('tools/analysis/bops_report.py', 'configs/quant/resnet20_cifar10_w4a4.py',
                   '--mp-config', 'configs/mixed_precision/resnet20_cifar10_paper_bmax3.json',
                   '--json', out_json)
    assert 'B-Comp 116.83x' in out
    report = json.load(open(out_json))
    assert report['summary']['bops'] == 351_535_104
    assert report['summary']['macs'] == 40_108_032
    assert report['settings']['include_fixed'] is False
    out = run_tool('tools/analysis/bops_report.py', 'configs/quant/resnet20_cifar10_w4a4.py',
                   '--include-fixed')
    assert 'fixed-precision layers counted' in out
    # a retrain config whose own file (and checkpoint) do not exist: --mp-config replaces it
    out = run_tool('tools/analysis/bops_report.py', 'configs/bpnas/bpnas_resnet20_cifar10_retrain.py',
                   '--mp-config', 'configs/mixed_precision/resnet20_cifar10_paper_bmax3.json',
                   '--json', out_json, '--cfg-options', 'model.mixed_precision=work_dirs/none.json',
                   'model.supernet_checkpoint=work_dirs/none.pth')
    assert json.load(open(out_json))['summary']['bops'] == 351_535_104


@pytest.mark.skipif(not os.path.isdir(os.path.join(SHARED, 'data', 'cifar10')),
                    reason='../shared/data/cifar10 not present')
def test_converted_public_resnet20_accuracy(tmp_path):
    """The converted public checkpoint on the first 2,000 CIFAR-10 test images."""
    dst = str(tmp_path / 'r20.pth')
    run_tool('tools/model_converters/resnet_cifar_to_mmpretrain.py',
             os.path.join(SHARED, 'weights', 'resnet20-12fca82f.th'), dst)
    metrics = str(tmp_path / 'm.json')
    run_tool('tools/test.py', 'configs/resnet20_cifar10_float.py', dst, '--work-dir',
             str(tmp_path / 'w'), '--out', metrics, '--cfg-options',
             f'test_dataloader.dataset.data_root={os.path.join(SHARED, "data", "cifar10")}',
             'test_dataloader.dataset.indices=2000', 'test_dataloader.num_workers=0',
             'test_dataloader.persistent_workers=False')
    assert json.load(open(metrics))['accuracy/top1'] > 89.0


def test_every_config_builds():
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    configs = [c for c in glob.glob(os.path.join(ROOT, 'configs', '**', '*.py'), recursive=True)
               if '_base_' not in c]
    assert len(configs) >= 6
    for path in configs:
        cfg = Config.fromfile(path)
        init_default_scope(cfg.default_scope)
        # A retrain config may read what its search run writes under work_dirs/; on a clean
        # clone that run has not happened, so build it from the float weights instead.
        for field in ('mixed_precision', 'supernet_checkpoint', 'float_checkpoint'):
            value = cfg.model.get(field)
            if isinstance(value, str) and value.startswith('work_dirs/'):
                cfg.model[field] = None
        model = MODELS.build(cfg.model)
        assert sum(p.numel() for p in model.parameters()) > 0, path


def test_imagenet10_search_file_transfers_to_the_1000_class_retrain():
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope
    init_default_scope('mmpretrain')
    search = MODELS.build(Config.fromfile(os.path.join(
        ROOT, 'configs/bpnas/bpnas_resnet50_imagenet10_search_b4.py')).model)
    mp = search.export()
    assert mp.extra['avg_bits'] <= 4.0 and len(search.space.names) == 16
    retrain = MODELS.build(Config.fromfile(os.path.join(
        ROOT, 'configs/bpnas/bpnas_resnet50_imagenet_retrain.py')).model)
    retrain.apply_mixed_precision(mp)
    assert retrain.architecture.head.fc.out_features == 1000
    assert retrain.quant_summary() == {n: (s['w_bits'], s['a_bits'], s['fixed'])
                                       for n, s in mp.layers.items()}
