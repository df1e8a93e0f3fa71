"""The detection search and retrain configs at a tiny size, and the COCO subset tool."""
import json
import os
import re

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from torch import nn

from bpnas_mm.quant import QuantMixin

from .conftest import ROOT, run_tool

SEARCH = 'configs/demo/bpnas_faster_rcnn_r18_demo.py'
RETRAIN = 'configs/demo/bpnas_faster_rcnn_r18_demo_retrain.py'
FULL = 'configs/bpnas_faster_rcnn_r50.py'


def _count(model):
    convs = [n for n, m in model.architecture.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in model.architecture.named_modules() if isinstance(m, nn.Linear)]
    quant = [n for n, m in model.architecture.named_modules() if isinstance(m, QuantMixin)]
    return convs, linears, quant


def _coco_metrics(out: str) -> dict:
    """The last CocoMetric values a tool logged (``coco/bbox_mAP: 0.0020 ...``)."""
    found = dict(re.findall(r'(coco/bbox_mAP\w*): (-?\d+\.\d+)', out))
    assert set(found) >= {'coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'}, out[-2000:]
    assert all(-1 <= float(v) <= 1 for v in found.values()), found  # COCO's -1: no such boxes
    return found


def test_r18_demo_detector_fully_quantized():
    cfg = Config.fromfile(os.path.join(ROOT, SEARCH))
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    convs, linears, quant = _count(model)
    assert sorted(quant) == sorted(convs + linears)
    # R18: stem + 16 block convs + 3 downsamples; FPN 4 lateral + 4 output; RPN 3; bbox head 4
    assert len(convs) == 20 + 8 + 3 and len(linears) == 4
    assert len(model.space.names) == 1 + 8 + 8 + 3 + 4  # stem, 8 blocks, FPN, RPN, FCs
    assert model.search_cfg['mode'] == 'sample' and model.budget == 4.0


def test_r50_search_config_fully_quantized_with_paper_groups():
    cfg = Config.fromfile(os.path.join(ROOT, FULL))
    cfg.model.bops.input_shape = (3, 256, 256)  # the probe at a CPU-friendly size
    init_default_scope('mmdet')
    model = MODELS.build(cfg.model)
    convs, linears, quant = _count(model)
    assert sorted(quant) == sorted(convs + linears)
    assert len(convs) == 53 + 8 + 3 and len(linears) == 4
    # paper Table 5: stem, 3 + 4 + 6 + 3 Bottlenecks, 8 FPN convs, 3 RPN convs, 4 FCs
    assert len(model.space.names) == 1 + 16 + 8 + 3 + 4
    assert model.space.candidates == [(2, 4), (3, 3), (3, 4), (3, 5), (4, 4), (4, 6), (6, 4),
                                      (4, 8)]
    signed = {n: m.a_quant.signed for n, m in model.qlayers.items()}
    assert all(v is None for v in signed.values())  # decided from the first batch


def test_search_iteration_export_and_retrain(tmp_path):
    work = str(tmp_path / 'search')
    tiny = ['train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=4',
            'train_cfg.search_dataloader.dataset.indices=4', 'val_dataloader.dataset.indices=2',
            'default_hooks.logger.interval=1', 'custom_hooks.1.interval=1']
    run_tool('tools/train.py', SEARCH, '--work-dir', work, '--cfg-options', *tiny)
    ckpt = torch.load(os.path.join(work, 'epoch_1.pth'), map_location='cpu', weights_only=True)
    theta = [v for k, v in ckpt['state_dict'].items() if k.startswith('mutator.arch_params.')]
    assert len(theta) == 24
    adam = ckpt['optimizer']['arch_params']['state']
    sgd = ckpt['optimizer']['architecture']['state']
    assert int(adam[0]['step']) == 2 and len(sgd) > 0  # 2 iterations of both steps
    assert any(s['exp_avg'].abs().sum() > 0 for s in adam.values())  # theta got gradients
    mp = json.load(open(os.path.join(work, 'mixed_precision.json')))
    assert mp['avg_bits'] <= mp['budget_avg_bits'] == 4.0
    assert len(mp['layers']) == 35
    history = [json.loads(line) for line in open(os.path.join(work, 'arch_history.jsonl'))]
    assert [r['iter'] for r in history] == [1, 2]  # one record per iteration (interval 1)
    for r in history:
        assert len(r['probs']) == 24 and all(abs(sum(p) - 1) < 1e-5 for p in r['probs'].values())
        assert 8 ** 0.5 - 1e-9 <= r['expected_bits'] <= 32 ** 0.5 + 1e-9  # (2,4) .. (4,8)
    assert history[-1]['sampled_bits'] == pytest.approx(mp['avg_bits'])  # the file's choice

    retrain = str(tmp_path / 'retrain')
    out = run_tool('tools/train.py', RETRAIN, '--work-dir', retrain, '--cfg-options',
                   'train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=2',
                   'val_dataloader.dataset.indices=2', 'test_dataloader.dataset.indices=2',
                   f'model.mixed_precision={work}/mixed_precision.json',
                   f'model.supernet_checkpoint={work}/epoch_1.pth')
    val = _coco_metrics(out)
    out = run_tool('tools/test.py', RETRAIN, os.path.join(retrain, 'epoch_1.pth'), '--work-dir',
                   retrain, '--cfg-options', 'test_dataloader.dataset.indices=2',
                   f'model.mixed_precision={work}/mixed_precision.json',
                   f'model.supernet_checkpoint={work}/epoch_1.pth')
    assert _coco_metrics(out) == val  # the same weights on the same images

    # deployment from the search checkpoint + its file, checked by onnxruntime
    deploy = str(tmp_path / 'deploy')
    mp = f'{work}/mixed_precision.json'
    run_tool('tools/deploy/export_onnx.py', RETRAIN, f'{work}/epoch_1.pth', '--out', deploy,
             '--mixed-precision', mp)
    sidecar = json.load(open(os.path.join(deploy, 'model.json')))
    chosen = json.load(open(mp))['layers']
    assert sidecar['task'] == 'detector' and sidecar['checkpoint_kind'] == 'supernet'
    assert {n: (e['w_bits'], e['a_bits']) for n, e in sidecar['layers'].items()} == {
        n: (v['w_bits'], v['a_bits']) for n, v in chosen.items()}
    run_tool('tools/deploy/verify_onnx.py', RETRAIN, f'{work}/epoch_1.pth', deploy,
             '--no-optimize', '--max-batches', '2', '--json', f'{deploy}/verify.json',
             '--cfg-options', f'model.mixed_precision={mp}')
    report = json.load(open(f'{deploy}/verify.json'))
    assert report['images'] == 2
    assert abs(report['bbox_mAP_pytorch'] - report['bbox_mAP_onnx']) <= 0.005
    m = report['matched_vs_export_graph_in_pytorch']
    assert m['matched'] >= 0.95 * m['ref'], m


def test_bops_report_counts_rois(tmp_path):
    out = run_tool('tools/analysis/bops_report.py', 'configs/quant/faster_rcnn_r50_fpn_w4a4_coco5.py',
                   '--input-shape', '3', '256', '256', '--json', str(tmp_path / 'r.json'))
    report = json.load(open(tmp_path / 'r.json'))
    fc0 = next(c for c in report['layers'] if c['name'] == 'roi_head.bbox_head.shared_fcs.0')
    assert fc0['rows'] == 1000 and fc0['macs'] == 1000 * 256 * 7 * 7 * 1024
    assert report['settings']['num_rois'] == 1000 and 'RoIs' in out
    assert report['summary']['avg_bits'] == pytest.approx(4.0)
