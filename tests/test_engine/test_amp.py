"""Mixed precision (AMP) with search configs: the optimizer settings of
``tools/train.py --amp`` reach both parts, and a search step runs under
autocast with its quantizers in float32 (CPU bfloat16 autocast stands in for
a GPU's; mmengine's AmpOptimWrapper itself needs one)."""
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper, OptimWrapperDict, build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.structures import DataSample

from bpnas_mm.engine import BPNASOptimWrapperConstructor
from bpnas_mm.quant import QConv2d
from bpnas_mm.quant.quantizer import Quantizer
from bpnas_mm.registry import MODELS

ROOT = Path(__file__).parents[2]
TINY = ROOT / 'configs' / 'bpnas' / 'bpnas_resnet8_tiny_search.py'
PARTS = dict(architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
             arch_params=dict(optimizer=dict(type='Adam', lr=0.05)))


def _tiny(mode='composite'):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    return MODELS.build(dict(Config.fromfile(str(TINY)).model.to_dict(), search=dict(mode=mode)))


def test_top_level_wrapper_settings_reach_both_parts_and_a_part_may_override():
    model = _tiny()
    cfg = dict(constructor='bpnas_mm.BPNASOptimWrapperConstructor', type='OptimWrapper',
               accumulative_counts=2, architecture=PARTS['architecture'],
               arch_params=dict(PARTS['arch_params'], accumulative_counts=1))
    wrappers = build_optim_wrapper(model, cfg)  # mmengine's own path, as the Runner takes it
    assert wrappers['architecture']._accumulative_counts == 2
    assert wrappers['arch_params']._accumulative_counts == 1
    # what tools/train.py --amp writes (building AmpOptimWrapper itself needs a GPU)
    amp = BPNASOptimWrapperConstructor(dict(PARTS, type='AmpOptimWrapper', loss_scale='dynamic'))
    for part in ('architecture', 'arch_params'):
        assert amp.cfgs[part]['type'] == 'AmpOptimWrapper'
        assert amp.cfgs[part]['loss_scale'] == 'dynamic'
    with pytest.raises(ValueError, match=r"loss_scale.*unexpected \['optimizer'\]"):
        BPNASOptimWrapperConstructor(dict(PARTS, optimizer=dict(type='SGD', lr=0.1)))


class AutocastWrapper(OptimWrapper):
    """An optim wrapper whose context is bfloat16 autocast on CPU (AmpOptimWrapper's
    context, without its GPU loss scaler)."""

    @contextmanager
    def optim_context(self, model):
        with super().optim_context(model), torch.autocast('cpu', dtype=torch.bfloat16):
            yield


def _batch(seed):
    g = torch.Generator().manual_seed(seed)
    return dict(inputs=[torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8)
                        for _ in range(4)],
                data_samples=[DataSample().set_gt_label(i) for i in range(4)])


@pytest.mark.parametrize('mode', ['composite', 'sample'])
def test_search_steps_under_autocast(mode):
    model = _tiny(mode)
    optim = OptimWrapperDict(
        architecture=AutocastWrapper(torch.optim.SGD(model.architecture.parameters(), lr=0.05)),
        arch_params=AutocastWrapper(torch.optim.Adam(model.arch_params.parameters(), lr=0.05)))
    theta0 = torch.cat([p.detach().clone() for p in model.arch_params.parameters()])
    model.train()
    for step in range(2):
        log = model.train_step(dict(train=_batch(step), search=_batch(10 + step)), optim)
        assert all(torch.isfinite(v).all() for v in log.values())
    assert log['expected_bits'].dtype == torch.float32  # theta's arithmetic stays float32
    theta = torch.cat([p.detach() for p in model.arch_params.parameters()])
    assert not torch.equal(theta, theta0)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_quantizers_compute_in_float32_under_autocast():
    torch.manual_seed(0)
    x = torch.randn(2, 8, 6, 6)
    quant = Quantizer(bits=4, batched=True)
    quant.initialize(x)
    q_bf16 = quant(x.to(torch.bfloat16))
    assert q_bf16.dtype == torch.float32
    assert torch.equal(q_bf16, quant(x.to(torch.bfloat16).float()))
    # a quantized conv: float32 quantization, the conv in bfloat16, the gradients float32
    conv = QConv2d(8, 4, 3, padding=1, w_bits=4, a_bits=4)
    ref = conv(x)
    xg = x.clone().requires_grad_()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = conv(xg)
    assert out.dtype == torch.bfloat16
    assert torch.allclose(out.float(), ref, rtol=0.05, atol=0.05 * ref.abs().max().item())
    out.float().sum().backward()
    assert xg.grad.dtype == torch.float32
    assert conv.a_quant.alpha.grad.dtype == torch.float32


@pytest.mark.skipif(torch.cuda.is_available(), reason='the refusal is for machines without a GPU')
def test_train_amp_without_gpu_is_refused_before_building_anything(tmp_path):
    res = subprocess.run([sys.executable, 'tools/train.py', str(TINY), '--amp', '--work-dir',
                          str(tmp_path / 'w')], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode != 0
    assert "--amp: mmengine's AmpOptimWrapper needs a GPU" in res.stderr
    assert not (tmp_path / 'w').exists()
