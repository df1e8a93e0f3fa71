"""Input quantization fused with the conv/linear that consumes it.

A quantized layer computes ``op(Q(x), w)``. Done with separate ops, autograd
keeps the float ``Q(x)`` for the weight gradient: one more activation-sized
tensor per layer than float training. Here the quantized input is kept as its
integer codes (``int8``/``uint8``, a quarter of the memory) and rebuilt in the
backward pass. Values and gradients equal the unfused composition
(:func:`bpnas_mm.quant.quantizer.fake_quant` then ``F.conv2d``/``F.linear``):
STE for ``x``, the LSQ/PACT gradient for ``alpha``.

An optional ``gate`` (a probability ``p`` requiring grad) multiplies the input
by ``p / stop_grad(p)`` (value unchanged) and receives ``<dL/dQ(x), Q(x)> / p``:
the path-sampling gradient of :mod:`bpnas_mm.search.mixed_layers`.
"""
from typing import Optional

import torch
import torch.nn.functional as F

#: fused ops store codes in 8 bits: signed up to 8 bits, unsigned up to 8 bits
MAX_FUSED_BITS = 8


class _QuantInputOp(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, alpha, weight, bias, gate, levels, signed, op, op_args):
        a = max(float(alpha), 1e-8)
        lo = -a if signed else 0.0
        codes = x.clamp(lo, a).mul_(levels / a).round_()
        code_dtype = torch.int8 if signed else torch.uint8
        xq = codes.mul(a / levels)
        out = _forward_op(op, xq, weight, bias, op_args)
        ctx.save_for_backward(x, codes.to(code_dtype), alpha, weight, gate)
        ctx.meta = (a, levels, signed, op, op_args, bias is not None)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, codes, alpha, weight, gate = ctx.saved_tensors
        a, levels, signed, op, op_args, has_bias = ctx.meta
        need_x, need_alpha, need_w, need_b, need_gate = ctx.needs_input_grad[:5]
        xq = codes.to(grad.dtype).mul_(a / levels)
        need_xq = need_x or need_alpha or need_gate
        grad_xq, grad_w, grad_b = _op_backward(op, grad, xq, weight, op_args,
                                               (need_xq, need_w, need_b and has_bias))
        grad_x = grad_alpha = grad_gate = None
        if need_gate:
            grad_gate = (grad_xq * xq).sum() / gate
        if need_x or need_alpha:
            above = x > a
            below = x < (-a if signed else 0.0)
            inside = ~(above | below)
            if need_x:
                grad_x = grad_xq * inside
            if need_alpha:
                g_alpha = torch.where(inside, (xq - x) / a, above.to(x.dtype))
                if signed:
                    g_alpha = g_alpha - below.to(x.dtype)
                grad_alpha = (grad_xq * g_alpha).sum().reshape(alpha.shape).to(alpha.dtype)
        return grad_x, grad_alpha, grad_w, grad_b, grad_gate, None, None, None, None


def _forward_op(op, x, weight, bias, op_args):
    if op == 'conv':
        stride, padding, dilation, groups = op_args
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return F.linear(x, weight, bias)


def _op_backward(op, grad, xq, weight, op_args, mask):
    """Gradients of the op wrt (input, weight, bias) where ``mask`` asks for them."""
    if op == 'conv':
        stride, padding, dilation, groups = op_args
        return torch.ops.aten.convolution_backward(
            grad, xq, weight, [weight.shape[0]], list(stride), list(padding), list(dilation),
            False, [0, 0], groups, list(mask))
    need_x, need_w, need_b = mask
    grad_x = grad.matmul(weight) if need_x else None
    flat = grad.reshape(-1, grad.shape[-1])
    grad_w = flat.t().matmul(xq.reshape(-1, xq.shape[-1])) if need_w else None
    grad_b = flat.sum(0) if need_b else None
    return grad_x, grad_w, grad_b


def can_fuse(bits: int, x: torch.Tensor) -> bool:
    """Fused ops serve 2..8-bit inputs (1-bit signed is binary, > 8 bits has no 8-bit code)."""
    return 2 <= bits <= MAX_FUSED_BITS and x.dtype in (torch.float32, torch.float64)


def quant_input_conv2d(x, alpha, bits: int, signed: bool, weight, bias, stride, padding,
                       dilation, groups, gate: Optional[torch.Tensor] = None):
    """``conv2d(Q_bits(x; alpha), weight, bias)`` keeping only 8-bit codes of Q(x)."""
    from .quantizer import num_steps
    return _QuantInputOp.apply(x, alpha, weight, bias, gate, num_steps(bits, signed), signed,
                               'conv', (stride, padding, dilation, groups))


def quant_input_linear(x, alpha, bits: int, signed: bool, weight, bias,
                       gate: Optional[torch.Tensor] = None):
    """``linear(Q_bits(x; alpha), weight, bias)`` keeping only 8-bit codes of Q(x)."""
    from .quantizer import num_steps
    return _QuantInputOp.apply(x, alpha, weight, bias, gate, num_steps(bits, signed), signed,
                               'linear', None)


class PathGate(torch.autograd.Function):
    """``y = x * p / stop_grad(p)`` without a new activation tensor (unfused path).

    Forward returns ``x`` unchanged (a view, saved by the op that consumes it
    anyway); backward passes the gradient to ``x`` and gives ``p`` ``<g, x> / p``.
    """

    @staticmethod
    def forward(ctx, x, p):
        ctx.save_for_backward(x, p)
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        x, p = ctx.saved_tensors
        grad_p = (grad * x).sum() / p if ctx.needs_input_grad[1] else None
        return grad, grad_p
