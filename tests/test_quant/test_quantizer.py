"""Invariants of the fake quantizers (Eq. 1 and PACT)."""
import pytest
import torch

from bpnas_mm.quant import Quantizer, fake_quant, num_steps


@pytest.mark.parametrize('bits', [1, 2, 3, 4, 6, 8])
@pytest.mark.parametrize('signed', [True, False])
def test_at_most_2_pow_b_levels(bits, signed):
    x = torch.randn(100_000) * 3
    q = fake_quant(x, torch.tensor(2.0), bits, signed)
    assert q.unique().numel() <= 2 ** bits
    assert q.abs().max() <= 2.0 + 1e-6
    if not signed:
        assert q.min() >= 0


@pytest.mark.parametrize('bits', [2, 3, 4, 8])
@pytest.mark.parametrize('signed', [True, False])
def test_on_grid_values_pass_unchanged(bits, signed):
    alpha = torch.tensor(1.5)
    n = num_steps(bits, signed)
    step = alpha / n
    ints = torch.arange(-n if signed else 0, n + 1, dtype=torch.float32)
    grid = ints * step
    assert torch.equal(fake_quant(grid, alpha, bits, signed), grid)


def test_eq1_closed_form_values():
    # 3-bit signed, alpha = 3: step = 3 / (2^2 - 1) = 1
    x = torch.tensor([-5.0, -1.4, -0.6, 0.2, 0.5001, 2.49, 7.0])
    q = fake_quant(x, torch.tensor(3.0), 3, True)
    assert q.tolist() == [-3.0, -1.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    # 2-bit unsigned, alpha = 3: step = 3 / 3 = 1, negatives clip to 0
    q = fake_quant(x, torch.tensor(3.0), 2, False)
    assert q.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 3.0]


def test_float_bits_is_identity():
    x = torch.randn(1000)
    assert fake_quant(x, torch.tensor(0.1), 32, True) is x


@pytest.mark.parametrize('signed', [True, False])
def test_ste_gradient_one_inside_zero_outside(signed):
    alpha = torch.tensor(1.0)
    x = torch.tensor([-2.0, -0.7, -0.3, 0.3, 0.7, 2.0], requires_grad=True)
    fake_quant(x, alpha, 4, signed).sum().backward()
    if signed:
        expected = [0.0, 1.0, 1.0, 1.0, 1.0, 0.0]
    else:
        expected = [0.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    assert x.grad.tolist() == expected


def test_alpha_gets_pact_gradient():
    alpha = torch.tensor(1.0, requires_grad=True)
    # above the range: dQ/dalpha = 1 (PACT)
    fake_quant(torch.tensor([5.0]), alpha, 4, False).sum().backward()
    assert alpha.grad.item() == pytest.approx(1.0)
    # inside: (round(x/s) - x/s) * ds/dalpha with s = alpha / 15
    alpha.grad = None
    x = torch.tensor([0.31])
    fake_quant(x, alpha, 4, False).sum().backward()
    s = 1.0 / 15
    expected = (round(0.31 / s) - 0.31 / s) / 15
    assert alpha.grad.item() == pytest.approx(expected, rel=1e-5)
    # below zero (unsigned): no gradient at all
    alpha.grad = None
    fake_quant(torch.tensor([-1.0]), alpha, 4, False).sum().backward()
    assert alpha.grad.item() == 0.0


def test_binary_signed():
    x = torch.tensor([-0.3, 0.0, 0.2, 5.0])
    q = fake_quant(x, torch.tensor(0.5), 1, True)
    assert q.tolist() == [-0.5, 0.5, 0.5, 0.5]


def test_alpha_initialised_from_data_and_sign_decided():
    torch.manual_seed(0)
    q = Quantizer(4, signed=None, init="percentile", init_k=99.0)
    x = torch.relu(torch.randn(4, 1000)) * 5
    q(x)
    assert bool(q.initialized)
    assert q.signed is False
    assert q.alpha.item() == pytest.approx(torch.quantile(x.flatten(), 0.99).item(), rel=1e-4)
    # calibrates once only
    q(x * 100)
    assert q.alpha.item() < 100
    q2 = Quantizer(4, signed=None, init='max')
    q2(torch.tensor([-3.0, 1.0]))
    assert q2.signed is True and q2.alpha.item() == 3.0


def test_mean_abs_init_capped_at_max():
    q = Quantizer(4, signed=True, init="mean_abs", init_k=2.0)
    w = torch.tensor([0.1, -0.1, 0.1, -1.0])
    q(w)
    assert q.alpha.item() == pytest.approx(2 * w.abs().mean().item())
    q = Quantizer(4, signed=True, init="mean_abs", init_k=100.0)
    q(w)
    assert q.alpha.item() == pytest.approx(1.0)


def test_bad_bits_and_init_rejected():
    with pytest.raises(ValueError, match='bits must be an integer in 1..32'):
        Quantizer(0)
    with pytest.raises(ValueError, match='bits must be an integer in 1..32'):
        Quantizer(2.5)
    with pytest.raises(ValueError, match='init must be one of'):
        Quantizer(4, init='median')


@pytest.mark.parametrize('bits', [2, 4, 8])
def test_mse_init_beats_max_and_depends_on_bits(bits):
    torch.manual_seed(0)
    w = torch.randn(20_000)
    q = Quantizer(bits, signed=True, init='mse')
    q(w)
    alpha = q.alpha.detach()
    err = (fake_quant(w, alpha, bits, True) - w).pow(2).mean()
    err_max = (fake_quant(w, w.abs().max(), bits, True) - w).pow(2).mean()
    assert err <= err_max
    assert 0 < alpha <= w.abs().max()
    if bits == 2:  # low bits clip much harder than high bits
        q8 = Quantizer(8, signed=True, init='mse')
        q8(w)
        assert alpha < 0.6 * q8.alpha.item()


@pytest.mark.parametrize('bits', [2, 3, 5, 8])
@pytest.mark.parametrize('signed', [True, False])
def test_fused_quantizer_matches_autograd_reference(bits, signed):
    from bpnas_mm.quant.functional import fake_quant_reference
    torch.manual_seed(bits)
    x = (torch.randn(4000, dtype=torch.float64) * 2).requires_grad_()
    alpha = torch.tensor(1.3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4000, dtype=torch.float64)
    out = fake_quant(x, alpha, bits, signed)
    (out * g).sum().backward()
    gx, ga = x.grad.clone(), alpha.grad.clone()
    x.grad = alpha.grad = None
    ref = fake_quant_reference(x, alpha, bits, signed)
    (ref * g).sum().backward()
    assert torch.equal(out, ref)
    # the reference's STE passes g * (1/s) * s, equal to g up to the last bit
    assert torch.allclose(gx, x.grad, rtol=1e-12, atol=0)
    inside = (x.detach() <= 1.3) & (x.detach() >= (-1.3 if signed else 0.0))
    assert torch.equal(gx, g * inside)  # exactly 1 inside, 0 outside
    assert ga.item() == pytest.approx(alpha.grad.item(), rel=1e-9)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('signed', [True, False])
@pytest.mark.parametrize('region', ['both', 'below', 'above', 'inside'])
def test_fused_gradients_at_the_clip_boundaries(dtype, signed, region):
    """x exactly at 0 and +-alpha counts as inside (closed range), in each branch
    of the fused backward (values outside on one side, both sides, or none);
    closed forms: dQ/dx = [lo <= x <= a], dQ/dalpha = (Q - x)/a inside, 1 above,
    -1 below (signed) or 0 (unsigned)."""
    a = 1.25
    pts = {'both': [-3.0, -a, -0.5, 0.0, 0.3, a, 2.0], 'below': [-3.0, -a, 0.0, 0.7, a],
           'above': [-a, 0.0, 0.2, a, 5.0], 'inside': [-a, 0.0, 0.4, a]}[region]
    if not signed and region in ('above', 'inside'):
        pts = [abs(p) for p in pts]
    x = torch.tensor(pts * 3, dtype=dtype, requires_grad=True)
    alpha = torch.tensor(a, dtype=dtype, requires_grad=True)
    g = torch.linspace(-1, 2, x.numel(), dtype=dtype)
    q = fake_quant(x, alpha, 3, signed)
    (q * g).sum().backward()
    xd, qd = x.detach(), q.detach()
    lo = -a if signed else 0.0
    inside, above, below = (xd >= lo) & (xd <= a), xd > a, xd < lo
    assert torch.equal(x.grad, g * inside)
    expected = (g * inside * (qd - xd) / a).sum() + g[above].sum()
    if signed:
        expected = expected - g[below].sum()
    assert alpha.grad.item() == pytest.approx(expected.item(), rel=1e-5, abs=1e-6)


def test_grad_scale_keeps_value_and_scales_alpha_gradient_by_lsq_factor():
    x = torch.randn(3, 50, dtype=torch.float64)
    grads, outs = [], []
    for gs in (False, True):
        q = Quantizer(3, signed=True, grad_scale=gs).double()
        q.initialize(x)
        out = q(x)
        (out * torch.linspace(-1, 1, x.numel(), dtype=torch.float64).view_as(x)).sum().backward()
        grads.append(q.alpha.grad.item())
        outs.append(out.detach())
    assert torch.equal(outs[0], outs[1])
    assert grads[1] == pytest.approx(grads[0] / (150 * 3) ** 0.5, rel=1e-12)
    qb = Quantizer(3, signed=True, batched=True).double()  # activations: N per sample
    qb.initialize(x)
    (qb(x) * torch.linspace(-1, 1, x.numel(), dtype=torch.float64).view_as(x)).sum().backward()
    assert qb.alpha.grad.item() == pytest.approx(grads[0] / (50 * 3) ** 0.5, rel=1e-12)


def _train_ternary_conv(grad_scale: bool, steps: int = 30):
    from bpnas_mm.quant import QConv2d
    torch.manual_seed(0)
    conv = QConv2d(64, 64, 3, padding=1, bias=False, w_bits=2, a_bits=3,
                   alpha_grad_scale=grad_scale)
    teacher = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False)
    opt = torch.optim.SGD(conv.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    for _ in range(steps):
        x = torch.randn(32, 64, 8, 8).relu()
        target = teacher(x).mean((2, 3)).argmax(1)
        loss = torch.nn.functional.cross_entropy(conv(x).mean((2, 3)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return conv.w_quant.alpha.item(), conv.weight.abs().max().item()


def test_ternary_weight_clip_stays_in_the_weight_range_with_grad_scale():
    """The regression behind 29 % top-1 for W2A3 ResNet20: an unscaled clip
    gradient (a sum over 36,864 weights) at lr 0.05 throws alpha far outside the
    weights, so every weight rounds to 0; the LSQ-scaled clip stays among them."""
    alpha, w_max = _train_ternary_conv(grad_scale=True)
    assert 0 < alpha <= w_max
    alpha_raw, w_max_raw = _train_ternary_conv(grad_scale=False)
    assert alpha_raw > w_max_raw  # what the scaling prevents: every weight rounds to 0


@pytest.mark.parametrize('signed', [True, False])
def test_clip_gradient_accurate_in_float32_on_a_large_tensor(signed):
    """Sums over the clipped elements are direct, not differences of totals: a
    float32 gradient over a million elements matches the closed form summed in
    float64 (differences of float32 totals missed it by ~1e-3 relative)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1_000_000, generator=gen) * (2.0 if signed else 1.0) - (1.0 if signed else 0.0)
    x[:20] = 1.5  # a few clipped above
    if signed:
        x[20:30] = -1.7  # and below
    g = torch.rand(x.numel(), generator=gen) + 0.5  # biased: all positive
    xf = x.clone().requires_grad_()
    alpha = torch.tensor(1.0, requires_grad=True)
    (fake_quant(xf, alpha, 8, signed) * g).sum().backward()
    xd, gd = x.double(), g.double()
    q = fake_quant(x, torch.tensor(1.0), 8, signed).double()  # the float32 values used
    lo = -1.0 if signed else 0.0
    inside = (xd >= lo) & (xd <= 1.0)
    expected = (gd * inside * (q - xd)).sum() + gd[xd > 1.0].sum() - (gd[xd < lo].sum() if signed
                                                                      else 0.0)
    assert alpha.grad.item() == pytest.approx(expected.item(), rel=1e-5)


def test_empty_batch_passes_through_forward_and_backward():
    from bpnas_mm.quant import QConv2d
    conv = QConv2d(3, 4, 3, padding=1, w_bits=4, a_bits=4)
    conv(torch.randn(2, 3, 8, 8))  # calibrated
    empty = torch.zeros(0, 3, 8, 8, requires_grad=True)
    out = conv(empty)
    assert out.shape == (0, 4, 8, 8)
    out.sum().backward()
    assert conv.a_quant.alpha.grad.item() == 0.0
    with torch.no_grad():
        assert conv(torch.zeros(0, 3, 8, 8)).shape == (0, 4, 8, 8)
    fresh = QConv2d(3, 4, 3, w_bits=4, a_bits=4)
    fresh(torch.zeros(0, 3, 8, 8))  # nothing to calibrate from: stays uncalibrated
    assert not bool(fresh.a_quant.initialized)
