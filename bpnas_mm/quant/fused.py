"""Input quantization fused with the conv/linear that consumes it.

A quantized layer computes ``op(Q(x), w)``. Done with separate ops, autograd
keeps the float ``Q(x)`` for the weight gradient and the float ``x`` for the
clip's gradient: one more activation-sized tensor per layer than float
training, plus the element-wise temporaries of the STE's backward. Here only
``x`` is kept (the tensor a float layer keeps too, and usually the one the
ReLU before it keeps); ``Q(x)`` is recomputed in the backward pass where the
weight gradient needs it, and the STE's gradients (input, clip, gate) come from
:func:`~bpnas_mm.quant.functional.ste_grads`: on CPU one kernel pass, written
into the input gradient's own buffer, with ``Q(x)`` in a reused scratch buffer
(:mod:`~bpnas_mm.quant.cpu_kernels`); elsewhere fused masking passes and
reductions.
Values and gradients equal the unfused composition
(:func:`bpnas_mm.quant.functional.fake_quant` then ``F.conv2d``/``F.linear``):
STE for ``x``, the LSQ/PACT gradient for ``alpha``.

An optional ``gate`` (a probability ``p`` requiring grad) multiplies the input
by ``p / stop_grad(p)`` (value unchanged) and receives ``<dL/dQ(x), Q(x)> / p``:
the path-sampling gradient of :mod:`bpnas_mm.search.mixed_layers`.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from . import backend, cpu_kernels
from .bits import FLOAT_BITS
from .functional import num_steps, quantize_values, ste_grads


class _QuantInputOp(torch.autograd.Function):

    @staticmethod
    def forward(ctx, x, alpha, weight, bias, gate, levels, signed, op, op_args):
        a = backend.clip_value(alpha)
        out = _forward_op(op, _quantize_transient(x, a, levels, signed), weight, bias, op_args)
        ctx.save_for_backward(x, weight, gate)
        ctx.meta = (a, levels, signed, op, op_args, bias is not None)
        ctx.alpha_like = (alpha.shape, alpha.dtype)
        return out

    @staticmethod
    def backward(ctx, grad):
        x, weight, gate = ctx.saved_tensors
        a, levels, signed, op, op_args, has_bias = ctx.meta
        need_x, need_alpha, need_w, need_b, need_gate = ctx.needs_input_grad[:5]
        need_xq = need_x or need_alpha  # the gate's gradient reads grad_xq too, if there
        # If only the gate needs a gradient through Q(x) (a first layer, e.g. the
        # stem, in the theta step): <dL/dQ(x), Q(x)> = <dL/dy, op(Q(x))>, one
        # forward op instead of the input-gradient op (for a 3-channel input,
        # 2-4x the cost).
        gate_from_output = need_gate and not need_xq
        # Q(x) again, for the weight gradient (the STE's gradients recompute it
        # on the fly on CPU, or use this one as a scratch buffer)
        xq = _quantize_transient(x, a, levels, signed) if need_w or gate_from_output else None
        grad_xq, grad_w, grad_b = _op_backward(op, grad, x if xq is None else xq, weight,
                                               op_args, (need_xq, need_w, need_b and has_bias))
        grad_x = grad_alpha = grad_gate = None
        if gate_from_output:
            y = _forward_op(op, xq, weight, None, op_args)
            dot = torch.dot(grad.reshape(-1), y.reshape(-1))
            grad_gate = (dot / gate).to(gate.dtype)
        if need_xq:
            grad_x, grad_alpha, dot = ste_grads(
                grad_xq.contiguous(), x, a, levels, signed, need_x, need_alpha, need_gate,
                xq=xq, xq_scratch=True, grad_inplace=True)  # grad_xq is ours to overwrite
            if grad_alpha is not None:
                shape, dtype = ctx.alpha_like
                grad_alpha = grad_alpha.to(dtype).reshape(shape)
            if dot is not None:
                grad_gate = (dot / gate).to(gate.dtype)
        return grad_x, grad_alpha, grad_w, grad_b, grad_gate, None, None, None, None


def _quantize_transient(x, a, levels, signed):
    """``Q(x)`` for one op to read and drop: in a reused buffer on CPU (no page
    faults of a fresh activation-sized tensor), a new tensor otherwise."""
    out = cpu_kernels.scratch_like(x) if backend.kernels_apply(x) else None
    return quantize_values(x, a, levels, signed, out)


def _forward_op(op, x, weight, bias, op_args):
    if op == 'conv':
        stride, padding, dilation, groups = op_args
        return F.conv2d(x, weight, bias, stride, padding, dilation, groups)
    return F.linear(x, weight, bias)


_conv_backward = torch.ops.aten.convolution_backward


def _op_backward(op, grad, xq, weight, op_args, mask):
    """Gradients of the op wrt (input, weight, bias) where ``mask`` asks for them."""
    need_x, need_w, need_b = mask
    if op == 'conv':
        stride, padding, dilation, groups = op_args
        # A bias gradient alone is a sum over the output gradient. Asked of the
        # conv backward, it would run the weight-gradient convolution too (the
        # oneDNN CPU path computes both together): in the theta step, where
        # only the gate reaches the bias, that doubled the cost of every biased
        # conv (FPN, RPN head).
        grad_x, grad_w, grad_b = _conv_backward(
            grad, xq, weight, [weight.shape[0]], list(stride), list(padding), list(dilation),
            False, [0, 0], groups, [need_x, need_w, need_b and need_w])
        if need_b and not need_w:
            grad_b = grad.sum((0, 2, 3))
        return grad_x, grad_w, grad_b
    grad_x = grad.matmul(weight) if need_x else None
    flat = grad.reshape(-1, grad.shape[-1])
    grad_w = flat.t().matmul(xq.reshape(-1, xq.shape[-1])) if need_w else None
    grad_b = flat.sum(0) if need_b else None
    return grad_x, grad_w, grad_b


def can_fuse(bits: int, x: torch.Tensor) -> bool:
    """Fused ops serve 2..31-bit float32/64 inputs (1-bit signed is binary:
    ``alpha * sign``) outside autocast (under AMP the op runs in the autocast
    dtype and the quantizer in float32, unfused)."""
    return (2 <= bits < FLOAT_BITS and x.dtype in (torch.float32, torch.float64)
            and not torch.is_autocast_enabled(x.device.type))


def quant_input_conv2d(x, alpha, bits: int, signed: bool, weight, bias, stride, padding,
                       dilation, groups, gate: Optional[torch.Tensor] = None):
    """``conv2d(Q_bits(x; alpha), weight, bias)``, keeping ``x`` only for the backward.

    On CPU a strided 1x1 conv without padding reads every ``stride``-th pixel
    first (the same result: a 1x1 conv uses no other pixel), so ``Q`` and the op
    see a quarter of the map.
    """
    if _is_strided_pointwise(x, weight, stride, padding, groups):
        sh, sw = _pair(stride)
        x = x[:, :, ::sh, ::sw].contiguous()
        stride = (1, 1)
    return _QuantInputOp.apply(x, alpha, weight, bias, gate, num_steps(bits, signed), signed,
                               'conv', (stride, padding, dilation, groups))


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _is_strided_pointwise(x, weight, stride, padding, groups) -> bool:
    return (x.device.type == 'cpu' and x.dim() == 4 and groups == 1
            and tuple(weight.shape[2:]) == (1, 1) and _pair(stride) != (1, 1)
            and not isinstance(padding, str) and _pair(padding) == (0, 0))


def quant_input_linear(x, alpha, bits: int, signed: bool, weight, bias,
                       gate: Optional[torch.Tensor] = None):
    """``linear(Q_bits(x; alpha), weight, bias)``, keeping ``x`` only for the backward."""
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
