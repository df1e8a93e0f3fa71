"""QConv2d / QLinear are the torch layers, exactly, in float mode."""
import pytest
import torch
from torch import nn

from bpnas_mm.quant import QConv2d, QLinear, reshape_weight


def _conv():
    torch.manual_seed(0)
    return nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2)


@pytest.mark.parametrize('make,x', [
    (_conv, torch.randn(2, 6, 9, 9)),
    (lambda: nn.Linear(7, 5), torch.randn(3, 7)),
])
def test_float_mode_bit_identical(make, x):
    ref = make()
    qcls = QConv2d if isinstance(ref, nn.Conv2d) else QLinear
    q = qcls.from_float(ref)
    assert isinstance(q, type(ref))
    assert q.weight is ref.weight  # shared, not copied
    assert torch.equal(q(x), ref(x))  # atol = 0
    out = q(x)
    out.sum().backward()
    assert ref.weight.grad is not None


def test_state_dict_compatible_with_torch_layer():
    ref = _conv()
    q = QConv2d(6, 8, 3, stride=2, padding=1, groups=2, w_bits=4, a_bits=4)
    q.load_state_dict(ref.state_dict(), strict=True)  # float checkpoint, no quantizer keys
    assert torch.equal(q.weight, ref.weight)
    back = nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2)
    missing, unexpected = back.load_state_dict(q.state_dict(), strict=False)
    assert not missing and all(k.split('.')[0] in ('w_quant', 'a_quant') for k in unexpected)


def test_quantized_forward_uses_quantized_weight_and_input():
    ref = _conv()
    q = QConv2d.from_float(ref, w_bits=2, a_bits=2)
    x = torch.relu(torch.randn(2, 6, 9, 9))
    y = q(x)
    assert q.a_quant.signed is False  # decided from the ReLU input
    wq = q.quant_weight()
    assert wq.unique().numel() <= 3  # 2-bit signed symmetric: -a, 0, a
    xq = q.a_quant(x)
    assert xq.unique().numel() <= 4
    assert torch.allclose(y, torch.nn.functional.conv2d(xq, wq, ref.bias, 2, 1, 1, 2))


def test_alpha_and_weight_get_gradients():
    q = QLinear.from_float(nn.Linear(7, 5), w_bits=3, a_bits=3)
    q(torch.randn(16, 7)).pow(2).sum().backward()
    assert q.w_quant.alpha.grad is not None and q.w_quant.alpha.grad.abs() > 0
    assert q.a_quant.alpha.grad is not None and q.a_quant.alpha.grad.abs() > 0
    assert q.weight.grad.abs().sum() > 0


def test_reshaping_clips_weights_to_k_mean_abs():
    w = torch.tensor([[0.1, -0.2, 0.1, 3.0]])
    t = 2 * w.abs().mean()
    r = reshape_weight(w, 2.0)
    assert r.max() == pytest.approx(t.item()) and r[0, :3].tolist() == pytest.approx([0.1, -0.2, 0.1])
    q = QLinear.from_float(nn.Linear(4, 1), reshape_k=2.0)
    q.weight.data.copy_(w)
    assert not q.is_float
    x = torch.tensor([[1.0, 1.0, 1.0, 100.0]])
    y = q(x)  # input goes through the learnable clip (Clip-ReLU), weight is clipped
    assert q.a_quant.alpha.item() < 100
    assert y.item() < (w @ x.T).item()


def test_bits_setters_validate():
    q = QLinear(3, 3)
    q.w_bits = 4
    assert q.w_bits == 4
    with pytest.raises(ValueError, match='a_bits'):
        q.a_bits = 33
    with pytest.raises(ValueError, match='w_bits'):
        q.w_bits = True
