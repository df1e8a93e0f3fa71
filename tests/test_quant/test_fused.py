"""Fused input quantization + op equals the unfused autograd composition."""
import pytest
import torch
from torch import nn

from bpnas_mm.quant import QConv2d, QLinear


def _pair(make, bits, signed):
    torch.manual_seed(0)
    ref = make()
    qcls = QConv2d if isinstance(ref, nn.Conv2d) else QLinear
    fused = qcls.from_float(ref, w_bits=4, a_bits=bits, a_signed=signed)
    plain = qcls.from_float(ref, w_bits=4, a_bits=bits, a_signed=signed)
    plain.fusable = False
    plain.weight = nn.Parameter(ref.weight.detach().clone())
    if ref.bias is not None:
        plain.bias = nn.Parameter(ref.bias.detach().clone())
    return fused, plain


CONVS = [lambda: nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2).double(),
         lambda: nn.Conv2d(4, 4, 3, padding=2, dilation=2, bias=False).double(),
         lambda: nn.Conv2d(3, 5, 1).double(),
         lambda: nn.Conv2d(4, 6, 1, stride=2, bias=False).double()]  # reads x[..., ::2, ::2]


@pytest.mark.parametrize('make', CONVS + [lambda: nn.Linear(7, 5).double()])
@pytest.mark.parametrize('bits,signed', [(2, True), (4, False), (8, True), (8, False)])
@pytest.mark.parametrize('gated', [False, True])
@pytest.mark.parametrize('batch', [1, 2])
def test_values_and_gradients_match_unfused(make, bits, signed, gated, batch, device):
    fused, plain = _pair(make, bits, signed)
    fused, plain = fused.to(device), plain.to(device)
    shape = (batch, fused.in_channels, 9, 9) if isinstance(fused, nn.Conv2d) else (batch, 3, 7)
    x0 = torch.randn(*shape, dtype=torch.float64).to(device) * 2
    if not signed:
        x0 = x0.relu()
    results = []
    for layer in (fused, plain):
        x = x0.clone().requires_grad_()
        theta = torch.zeros(3, dtype=torch.float64, device=device, requires_grad=True)
        gate = torch.softmax(theta, 0)[1] if gated else None
        layer.a_quant.double(), layer.w_quant.double()
        out = layer.quant_input_op(x, layer.a_quant, layer.quant_weight(), layer.bias, gate)
        g = torch.linspace(-1, 1, out.numel(), dtype=torch.float64,
                           device=device).reshape(out.shape)
        (out * g).sum().backward()
        results.append(dict(out=out.detach(), x=x.grad, w=layer.weight.grad,
                            alpha=layer.a_quant.alpha.grad,
                            b=None if layer.bias is None else layer.bias.grad,
                            theta=theta.grad if gated else None))
    f, p = results
    assert torch.allclose(f['out'], p['out'], atol=1e-10)
    for key in ('x', 'w', 'alpha', 'b', 'theta'):
        if p[key] is None:
            assert f[key] is None, key
        else:
            assert torch.allclose(f[key], p[key], atol=1e-9, rtol=1e-7), key


def _fused(out: torch.Tensor) -> bool:
    """Whether ``out`` came out of the fused quantize+op (its autograd node)."""
    return type(out.grad_fn).__name__ == '_QuantInputOpBackward'


def test_quantized_layers_use_the_fused_path():
    assert _fused(QConv2d(3, 4, 3, w_bits=4, a_bits=4)(torch.randn(1, 3, 8, 8)))
    assert _fused(QLinear(3, 4, w_bits=4, a_bits=8)(torch.randn(2, 3)))
    assert _fused(QLinear(3, 4, w_bits=4, a_bits=16)(torch.randn(2, 3)))
    binary = QLinear(3, 4, w_bits=4, a_bits=1, a_signed=True)(torch.randn(2, 3))
    assert binary.grad_fn is not None and not _fused(binary)  # binary: unfused


@pytest.mark.parametrize('make', [CONVS[0], CONVS[2], lambda: nn.Linear(7, 5).double()])
def test_gate_gradient_of_a_first_layer(make, monkeypatch):
    """Input without grad, clip frozen, gated (the stem in the theta step): the
    gate's gradient comes from the output, no input-gradient op runs."""
    from bpnas_mm.quant import fused as fused_mod
    masks = []
    orig = fused_mod._op_backward
    monkeypatch.setattr(fused_mod, '_op_backward',
                        lambda *a: masks.append(a[-1]) or orig(*a))
    fused, plain = _pair(make, 4, False)
    shape = (2, fused.in_channels, 9, 9) if isinstance(fused, nn.Conv2d) else (2, 3, 7)
    x = (torch.randn(*shape, dtype=torch.float64) * 2).relu()
    grads = []
    for layer in (fused, plain):
        layer.a_quant.double(), layer.w_quant.double()
        layer(x)  # calibration
        layer.requires_grad_(False)
        theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        gate = torch.softmax(theta, 0)[2]
        out = layer.quant_input_op(x, layer.a_quant, layer.quant_weight(), layer.bias, gate)
        g = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
        (out * g).sum().backward()
        grads.append(theta.grad)
    assert masks == [(False, False, False)]
    assert torch.allclose(grads[0], grads[1], atol=1e-10)


def test_strided_1x1_convs_quantize_only_the_pixels_they_read():
    shapes = []
    for conv in (nn.Conv2d(4, 6, 1, stride=2), nn.Conv2d(4, 6, 1), nn.Conv2d(4, 6, 3, stride=2),
                 nn.Conv2d(4, 6, 1, stride=2, padding=1), nn.Conv2d(4, 6, 1, stride=2, groups=2)):
        out = QConv2d.from_float(conv, w_bits=4, a_bits=4)(torch.randn(1, 4, 7, 7).relu())
        assert _fused(out)
        shapes.append(tuple(out.grad_fn.saved_tensors[0].shape))  # the input it keeps
    assert shapes == [(1, 4, 4, 4)] + [(1, 4, 7, 7)] * 4


@pytest.mark.parametrize('bias', [True, False])
def test_fused_output_accepts_in_place_ops(bias):
    """A conv followed by ReLU(inplace=True) or ``out += identity`` (no norm
    between them) must work and give the out-of-place result's gradients."""
    torch.manual_seed(0)
    layer = QConv2d(4, 6, 1, bias=bias, w_bits=4, a_bits=4).double()
    x0 = torch.randn(1, 4, 5, 5, dtype=torch.float64).relu()
    layer(x0)  # calibration
    grads = []
    for in_place in (True, False):
        x = x0.clone().requires_grad_()
        out = layer(x)
        out = out.add_(1.0).relu_() if in_place else (out + 1.0).relu()
        out.pow(2).sum().backward()
        grads.append(x.grad)
    assert torch.equal(grads[0], grads[1])


def test_fused_op_keeps_only_the_input_and_weight_for_backward():
    """The fused op saves x (which a float conv saves too) and the weight: no
    quantized copy and no codes of the activation."""
    layer = QConv2d(8, 8, 3, padding=1, w_bits=4, a_bits=4)
    x = torch.randn(2, 8, 16, 16).relu().requires_grad_()
    layer(x)  # calibrate outside the count
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        layer(x)
    act_sized = [t for t in saved if t.numel() == x.numel()]
    assert len(act_sized) == 1 and act_sized[0].data_ptr() == x.data_ptr()


@pytest.mark.parametrize('x_grad,w_grad', [(False, True), (True, False), (False, False)])
def test_fused_matches_unfused_with_frozen_inputs_or_weights(x_grad, w_grad):
    """A first layer (input without grad) and a frozen weight (the theta step)."""
    fused, plain = _pair(CONVS[0], 4, False)
    x0 = (torch.randn(2, 6, 9, 9, dtype=torch.float64) * 2).relu()
    grads = []
    for layer in (fused, plain):
        layer.a_quant.double(), layer.w_quant.double()
        layer.weight.requires_grad_(w_grad)
        x = x0.clone().requires_grad_(x_grad)
        out = layer.quant_input_op(x, layer.a_quant, layer.quant_weight(), layer.bias)
        g = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
        (out * g).sum().backward()
        grads.append((x.grad, layer.weight.grad, layer.a_quant.alpha.grad, layer.bias.grad))
    (fx, fw, fa, fb), (px, pw, pa, pb) = grads
    assert (fx is None) == (not x_grad) and (fw is None) == (not w_grad)
    if x_grad:
        assert torch.allclose(fx, px, atol=1e-12)
    if w_grad:
        assert torch.allclose(fw, pw, atol=1e-9)
    assert torch.allclose(fa, pa, rtol=1e-7)
    assert torch.allclose(fb, pb, atol=1e-12)


def test_a_bias_gradient_alone_does_not_run_the_weight_gradient(monkeypatch):
    """The theta step: weights and clips are frozen, the gate reaches the bias.
    The conv backward is asked for the input gradient only (the bias's is a sum),
    and theta's gradient equals the unfused composition's."""
    masks = []
    orig = torch.ops.aten.convolution_backward

    def spy(*args):
        masks.append(list(args[-1]))
        return orig(*args)

    from bpnas_mm.quant import fused as fused_mod
    monkeypatch.setattr(fused_mod, '_conv_backward', spy)
    fused, plain = _pair(CONVS[0], 4, False)
    x0 = (torch.randn(2, 6, 9, 9, dtype=torch.float64) * 2).relu()
    theta_grads = []
    for layer in (fused, plain):
        layer.a_quant.double(), layer.w_quant.double()
        layer(x0)  # calibration
        layer.requires_grad_(False)
        theta = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        gate = torch.softmax(theta, 0)[0]
        bias = layer.bias * (gate / gate.detach())
        x = x0.clone().requires_grad_()
        out = layer.quant_input_op(x, layer.a_quant, layer.quant_weight(), bias, gate)
        g = torch.linspace(-1, 1, out.numel(), dtype=torch.float64).view_as(out)
        (out * g).sum().backward()
        theta_grads.append(theta.grad)
    assert masks == [[True, False, False]]
    assert torch.allclose(theta_grads[0], theta_grads[1], atol=1e-9)
