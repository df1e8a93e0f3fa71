"""The patcher: one rule set decides which layers are quantized and how."""
import copy

import pytest
import torch
from torch import nn

from bpnas_mm.models import QuantRules, quantize_model, quantized_layers
from bpnas_mm.quant import QConv2d, QLinear

FIXED = [dict(layers=['backbone.conv1', 'head.fc'], w_bits=8, a_bits=8)]


def test_every_conv_and_linear_swapped(tiny_classifier):
    ref = copy.deepcopy(tiny_classifier)
    layers = quantize_model(tiny_classifier, dict(w_bits=32, a_bits=32))
    assert len(layers) == 20  # 19 convs + fc
    assert sum(isinstance(m, QConv2d) for m in layers.values()) == 19
    assert isinstance(layers['head.fc'], QLinear)
    assert list(quantized_layers(tiny_classifier)) == list(layers)
    x = torch.randn(2, 3, 32, 32)
    tiny_classifier.eval(), ref.eval()
    assert torch.equal(tiny_classifier(x), ref(x))  # float mode: exactly the model


def test_fixed_exclude_and_signed_rules(tiny_classifier):
    layers = quantize_model(tiny_classifier, dict(
        w_bits=4, a_bits=3, exclude=['backbone.layer3.2.*'], fixed=FIXED,
        signed=[dict(layers='backbone.conv1', a_signed=True)]))
    assert 'backbone.layer3.2.conv1' not in layers
    assert type(tiny_classifier.backbone.layer3[2].conv1) is nn.Conv2d
    stem = layers['backbone.conv1']
    assert (stem.w_bits, stem.a_bits, stem.fixed_precision) == (8, 8, True)
    assert stem.a_quant.signed is True
    body = layers['backbone.layer1.0.conv2']
    assert (body.w_bits, body.a_bits, body.fixed_precision) == (4, 3, False)
    assert body.a_quant.signed is None  # decided from data at calibration
    out = tiny_classifier(torch.randn(2, 3, 32, 32))
    assert torch.isfinite(out).all()
    assert body.a_quant.signed is False  # post-ReLU input


@pytest.mark.parametrize('cfg,match', [
    (dict(include=['backbone.layer9.*']), "quant.include: pattern 'backbone.layer9.*' matches no"),
    (dict(exclude='neck.*'), 'quant.exclude'),
    (dict(fixed=[dict(layers='nothing', w_bits=8, a_bits=8)]), r'quant.fixed\[0\].layers'),
    (dict(w_bits=0), r'quant.w_bits must be an integer in 1..32'),
    (dict(a_bits=4.5), r'quant.a_bits must be an integer in 1..32'),
    (dict(fixed=[dict(layers='head.fc', w_bits=64, a_bits=8)]), r'quant.fixed\[0\].w_bits'),
    (dict(fixed=[dict(layers='head.fc', bits=8)]), r'quant.fixed\[0\] must be dict'),
    (dict(w_bit=4), 'quant: unknown keys'),
    (dict(signed=[dict(layers='head.fc', a_signed='yes')]), r'quant.signed\[0\]'),
    (dict(alpha_grad_scale='lsq'), 'quant.alpha_grad_scale must be True or False'),
    (dict(w_init='minmax'), r"quant.w_init must be one of \('mse', 'mean_abs', 'max', "
                            r"'percentile'\), got 'minmax'"),
    (dict(a_init_k=float('nan')), r'quant.a_init_k must be a finite number in \(0, inf\]'),
    (dict(reshape_k=-1.0), r'quant.reshape_k must be a finite number in \(0, inf\]'),
])
def test_bad_rules_name_the_field(tiny_classifier, cfg, match):
    with pytest.raises(ValueError, match=match):
        quantize_model(tiny_classifier, cfg)


def test_alpha_grad_scale_reaches_every_quantizer(tiny_classifier):
    layers = quantize_model(tiny_classifier, dict(alpha_grad_scale=False))
    assert all(not m.w_quant.spec.grad_scale and not m.a_quant.spec.grad_scale
               for m in layers.values())


def test_rules_object_and_plan(tiny_classifier):
    rules = QuantRules.from_cfg(dict(w_bits=2, a_bits=4, fixed=FIXED))
    plan = rules.plan(tiny_classifier)
    assert plan['head.fc'] == dict(w_bits=8, a_bits=8, a_signed=None, fixed=True)
    assert plan['backbone.layer2.0.conv1']['w_bits'] == 2


def test_quantizing_twice_is_an_error(tiny_classifier):
    quantize_model(tiny_classifier, {})
    with pytest.raises(ValueError, match='already quantized'):
        quantize_model(tiny_classifier, {})


@pytest.mark.parametrize('bops,match', [
    (dict(input_shape=(3, 32)), r'bops.input_shape must be \(C, H, W\) positive ints'),
    (dict(input_shape=(3, 0, 32)), 'bops.input_shape'),
    (dict(include_fixed=1), 'bops.include_fixed must be True or False, got 1'),
    (dict(num_rois=0), r'bops.num_rois must be a finite number in \[1, inf\]'),
    (dict(input=(3, 32, 32)), r"bops: unknown keys \['input'\]"),
])
def test_bad_bops_settings_name_the_field(bops, match):
    from bpnas_mm.bops.settings import check_bops_cfg
    with pytest.raises(ValueError, match=match):
        check_bops_cfg(bops)
