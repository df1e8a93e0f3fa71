"""Mixed (supernet) layers: Eq. 6 computed exactly, cheaply, and with theta gradients."""
import pytest
import torch
from torch import nn

from bpnas_mm.quant import QConv2d, QLinear
from bpnas_mm.search.mixed_layers import MixedQConv2d, MixedQLinear, to_mixed

CIFAR = [(2, 3), (2, 4), (3, 3), (3, 4), (4, 4), (4, 6), (6, 4), (8, 4)]
WIDE_A = [(4, 2), (4, 3), (4, 4), (4, 5), (2, 8)]  # fewer weight widths: the other grouping


def _conv(cands):
    torch.manual_seed(0)
    layer = to_mixed(QConv2d.from_float(nn.Conv2d(8, 6, 3, padding=1)), cands)
    x = torch.relu(torch.randn(2, 8, 7, 7))
    layer.candidate_forward(x, 0)  # calibrate every quantizer once
    for j in range(len(cands)):
        layer.candidate_forward(x, j)
    return layer, x


def _linear(cands):
    torch.manual_seed(1)
    layer = to_mixed(QLinear.from_float(nn.Linear(10, 4)), cands)
    x = torch.randn(5, 10)  # signed input
    for j in range(len(cands)):
        layer.candidate_forward(x, j)
    return layer, x


@pytest.mark.parametrize('make', [_conv, _linear])
@pytest.mark.parametrize('cands', [CIFAR, WIDE_A])
def test_composite_equals_naive_sum(make, cands):
    layer, x = make(cands)
    probs = torch.softmax(torch.randn(len(cands)), 0)
    naive = layer.naive_forward(x, probs)
    fast = layer.composite_forward(x, probs)
    assert torch.allclose(fast, naive, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize('make', [_conv, _linear])
@pytest.mark.parametrize('cands', [CIFAR, WIDE_A])
def test_one_hot_equals_that_candidate_exactly(make, cands):
    layer, x = make(cands)
    for j in range(len(cands)):
        one_hot = torch.zeros(len(cands))
        one_hot[j] = 1.0
        layer.arch_probs = one_hot
        assert torch.equal(layer(x), layer.candidate_forward(x, j))
    layer.arch_probs = None


def test_candidate_is_a_plain_quantized_layer():
    layer, x = _conv(CIFAR)
    w_bits, a_bits = CIFAR[3]
    ref = QConv2d(8, 6, 3, padding=1, w_bits=w_bits, a_bits=a_bits)
    ref.weight, ref.bias = layer.weight, layer.bias
    ref.w_quant.load_state_dict(layer.w_quants[str(w_bits)].state_dict())
    ref.a_quant.load_state_dict(layer.a_quants[str(a_bits)].state_dict())
    assert torch.equal(ref(x), layer.candidate_forward(x, 3))


def test_composite_uses_one_conv_per_activation_width(monkeypatch):
    layer, x = _conv(CIFAR)
    calls = []
    orig = layer.quant_input_op
    monkeypatch.setattr(layer, 'quant_input_op',
                        lambda *args, **kw: calls.append(1) or orig(*args, **kw))
    layer.composite_forward(x, torch.full((8,), 1 / 8))
    assert len(calls) == 3  # a in {3, 4, 6}


def test_theta_gets_gradient_in_both_modes():
    layer, x = _conv(CIFAR)
    theta = torch.zeros(8, requires_grad=True)
    layer.arch_probs = torch.softmax(theta, 0)
    layer(x).pow(2).sum().backward()
    assert theta.grad.abs().sum() > 0
    theta.grad = None
    layer.arch_probs = torch.softmax(theta, 0)
    layer.arch_choice = 5
    out = layer(x)
    assert torch.allclose(out, layer.candidate_forward(x, 5))  # value of the sampled path
    out.pow(2).sum().backward()
    assert theta.grad.abs().sum() > 0
    layer.arch_probs = layer.arch_choice = None


def test_weight_shared_and_fixed_mode():
    conv = QConv2d.from_float(nn.Conv2d(3, 4, 1), w_bits=32, a_bits=32)
    mixed = to_mixed(conv, CIFAR)
    assert isinstance(mixed, MixedQConv2d) and mixed.weight is conv.weight
    x = torch.randn(1, 3, 4, 4)
    # no probs, no choice: an error, not silently the layer's own bits (a supernet run
    # outside the mutator's context would otherwise measure plain QAT)
    with pytest.raises(RuntimeError, match=r'without a configuration.*mutator.applied'):
        mixed(x)
    assert isinstance(to_mixed(QLinear(2, 2), [(2, 2)]), MixedQLinear)
    with pytest.raises(ValueError, match='candidates'):
        to_mixed(QLinear(2, 2), [])
    with pytest.raises(ValueError, match=r'candidates\[1\].a_bits'):
        to_mixed(QLinear(2, 2), [(2, 2), (3, 40)])


def test_candidate_quantizers_inherit_the_layer_settings():
    conv = QConv2d.from_float(nn.Conv2d(3, 4, 1), w_bits=4, a_bits=4, a_init='max',
                              alpha_grad_scale=False)
    mixed = to_mixed(conv, CIFAR)
    # each candidate's spec is the layer's with another width, nothing else
    for quants, base in ((mixed.w_quants, conv.w_quant.spec), (mixed.a_quants, conv.a_quant.spec)):
        assert [q.spec for q in quants.values()] == [base.replace(bits=int(b)) for b in quants]
    assert all(not q.spec.grad_scale for q in mixed.a_quants.values())
    assert all(q.spec.init == 'max' for q in mixed.a_quants.values())
    assert all(q.spec.batched for q in mixed.a_quants.values())  # LSQ's N: per sample
    assert not any(q.spec.batched for q in mixed.w_quants.values())


def test_path_gate_gradient_equals_explicit_scaling():
    layer, x = _conv(CIFAR)
    theta = torch.randn(8, requires_grad=True)
    g = torch.randn(2, 6, 7, 7)
    layer.arch_probs, layer.arch_choice = torch.softmax(theta, 0), 2
    (layer(x) * g).sum().backward()
    gated = theta.grad.clone()
    theta.grad = None
    p = torch.softmax(theta, 0)[2]
    ((layer.candidate_forward(x, 2) * (p / p.detach())) * g).sum().backward()
    assert torch.allclose(gated, theta.grad, rtol=1e-5, atol=1e-7)
    layer.arch_probs = layer.arch_choice = None


def test_first_forward_calibrates_every_candidate_once():
    torch.manual_seed(2)
    layer = to_mixed(QConv2d.from_float(nn.Conv2d(8, 6, 3, padding=1)), CIFAR)
    quantizers = list(layer.w_quants.values()) + list(layer.a_quants.values())
    assert not any(bool(q.initialized) for q in quantizers)
    x = torch.relu(torch.randn(2, 8, 7, 7))
    layer.arch_choice = 0  # path sampling draws (2, 3); all the others are set too
    layer(x)
    assert all(bool(q.initialized) for q in quantizers)
    alphas = [q.alpha.item() for q in quantizers]
    # the same as calibrating each one on its own from that input and weight
    for q in layer.w_quants.values():
        ref = type(q)(q.bits, signed=True)
        ref.initialize(layer.weight)
        assert q.alpha.item() == pytest.approx(ref.alpha.item())
    layer.arch_choice = 5
    layer(3 * x)  # later inputs do not recalibrate
    assert [q.alpha.item() for q in quantizers] == alphas
