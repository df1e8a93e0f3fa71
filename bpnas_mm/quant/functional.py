"""The quantizer's arithmetic as free functions (no state): paper Eq. 1.

* signed (weights, and activations that can be negative):
  ``s = alpha / (2^(b-1) - 1)``, ``Q(x) = round(clamp(x, -alpha, alpha) / s) * s``;
  at ``b = 1`` the binary ``alpha * sign(x)``.
* unsigned (PACT clip-ReLU, activations after a ReLU):
  ``s = alpha / (2^b - 1)``, ``Q(x) = round(clamp(x, 0, alpha) / s) * s``.

Rounding uses the straight-through estimator, so ``dQ/dx`` is 1 inside the clip
range and 0 outside, and ``alpha`` receives the PACT/LSQ gradient (1 above the
range, ``round(x/s) - x/s`` scaled by ``ds/dalpha`` inside). Used by the
:class:`~bpnas_mm.quant.quantizer.Quantizer` module and by the fused
quantize+op functions of :mod:`bpnas_mm.quant.fused`.
"""

import math
from typing import Optional, Union

import torch

from . import backend, cpu_kernels
from .bits import FLOAT_BITS
from .ste import round_ste, sign_ste


#: a clip as the arithmetic takes it: a float on CPU, a 0-d tensor elsewhere
Clip = Union[float, torch.Tensor]

#: float dtypes that autocast produces; quantizers compute in float32 instead
LOW_PRECISION = (torch.float16, torch.bfloat16)


def num_steps(bits: int, signed: bool) -> int:
    """Number of positive quantization steps ``n`` (the step is ``alpha / n``)."""
    return 2 ** (bits - 1) - 1 if signed else 2 ** bits - 1


def clip(x: torch.Tensor, alpha: torch.Tensor, signed: bool) -> torch.Tensor:
    """Clamp to ``[-alpha, alpha]`` (signed) or ``[0, alpha]`` (unsigned, clip-ReLU)."""
    low = -alpha if signed else torch.zeros_like(alpha)
    return torch.minimum(torch.maximum(x, low), alpha)


def fake_quant_reference(x: torch.Tensor, alpha: torch.Tensor, bits: int,
                         signed: bool) -> torch.Tensor:
    """:func:`fake_quant` written with plain autograd ops (the test oracle)."""
    if bits >= FLOAT_BITS:
        return x
    xc = clip(x, alpha, signed)
    if signed and bits == 1:
        return alpha * sign_ste(xc)
    step = alpha / num_steps(bits, signed)
    return round_ste(xc / step) * step


def quantize_values(x: torch.Tensor, a: Clip, levels: int, signed: bool,
                    out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``round(clamp(x) / s) * s`` with ``s = a / levels`` (no autograd), into ``out``
    or a new tensor (one pass on CPU float32, :mod:`~bpnas_mm.quant.cpu_kernels`).
    ``a`` is a float or a 0-d tensor (:func:`~bpnas_mm.quant.backend.clip_value`)."""
    if isinstance(a, torch.Tensor):
        lo = -a if signed else torch.zeros_like(a)
        clamped = torch.clamp(x, lo, a, out=out)
    elif backend.kernels_apply(x) and (out is None or backend.kernels_apply(out)):
        return cpu_kernels.quantize(x, a, levels, signed, out)
    else:
        clamped = torch.clamp(x, -a if signed else 0.0, a, out=out)
    return clamped.mul_(levels / a).round_().mul_(a / levels)


def _open_bounds(lo: float, hi: float, dtype: torch.dtype):
    """``(lo', hi')`` with ``lo' < x < hi'`` exactly when ``lo <= x <= hi`` for ``x`` of
    ``dtype`` (``hardtanh_backward`` keeps the gradient on the open interval).

    Below 0 the neighbour is the smallest normal number, not a denormal, so that
    a flush-denormals mode cannot turn the bound into 0 itself.
    """
    def outward(v: float, to: float) -> float:
        if v == 0:
            return math.copysign(torch.finfo(dtype).tiny, to)
        t = torch.tensor(v, dtype=dtype)
        return float(torch.nextafter(t, torch.tensor(to, dtype=dtype)))
    return outward(lo, -math.inf), outward(hi, math.inf)


def clip_ste_grads(grad: torch.Tensor, x: torch.Tensor, xq: Optional[torch.Tensor], a: float,
                   signed: bool, need_alpha: bool, xq_scratch: bool = False):
    """Gradients of ``Q(x)`` (clip ``a``) wrt ``x`` and ``alpha``, given ``grad = dL/dQ``.

    ``dQ/dx`` is 1 on ``[lo, a]`` and 0 outside; ``dQ/dalpha`` is ``(Q - x) / a``
    inside, 1 above and -1 below (signed) or 0 (unsigned). Computed with one
    fused masking pass per region and reductions; with ``xq_scratch=True``
    (``xq`` may be overwritten) no activation-sized tensor is allocated beyond
    the returned ``grad_x``. Sums over the clipped regions are taken directly
    (not as differences of totals; torch's float32 sums are pairwise, hence
    accurate), then combined in float64 (float32 for half-precision inputs).
    A ``sum(dtype=float64)`` would first copy the tensor to float64: twice its
    size, measured 78 ms per FPN-P2-sized tensor.

    Returns ``(grad_x, grad_alpha or None)``. A 0-d tensor ``a`` takes
    :func:`_clip_ste_grads_on_device` (no host synchronisation).
    """
    if isinstance(a, torch.Tensor):
        return _clip_ste_grads_on_device(grad, x, xq, a, signed, need_alpha)
    lo = -a if signed else 0.0
    lo_open, hi_open = _open_bounds(lo, a, x.dtype)
    grad_x = torch.ops.aten.hardtanh_backward(grad, x, lo_open, hi_open)  # grad * inside
    if not need_alpha:
        return grad_x, None
    acc = torch.float64 if x.dtype in (torch.float32, torch.float64) else torch.float32
    err = xq.sub_(x) if xq_scratch else xq - x  # Q - x
    inside = torch.dot(grad_x.reshape(-1), err.reshape(-1)).to(acc) / a

    def region_sum(low: float, high: float) -> torch.Tensor:  # sum of grad on (low, high)
        if xq_scratch:  # the error is spent: its buffer takes the masked gradient
            masked = torch.ops.aten.hardtanh_backward.grad_input(grad, x, low, high,
                                                                 grad_input=err)
        else:
            masked = torch.ops.aten.hardtanh_backward(grad, x, low, high)
        return masked.sum().to(acc)

    grad_alpha = inside + region_sum(a, math.inf)  # above the range
    if signed:
        grad_alpha = grad_alpha - region_sum(-math.inf, lo)  # below it
    return grad_x, grad_alpha


def _clip_ste_grads_on_device(grad, x, xq, a: torch.Tensor, signed: bool, need_alpha: bool):
    """:func:`clip_ste_grads` with the clip as a 0-d tensor: the same regions
    (``lo <= x <= a`` inside, ``x > a`` above, ``x < lo`` below) as masks."""
    lo = -a if signed else torch.zeros_like(a)
    grad_x = torch.where((x >= lo) & (x <= a), grad, 0)
    if not need_alpha:
        return grad_x, None
    acc = torch.float64 if x.dtype in (torch.float32, torch.float64) else torch.float32
    inside = torch.dot(grad_x.reshape(-1), (xq - x).reshape(-1)).to(acc) / a.to(acc)
    grad_alpha = inside + torch.where(x > a, grad, 0).sum().to(acc)
    if signed:
        grad_alpha = grad_alpha - torch.where(x < lo, grad, 0).sum().to(acc)
    return grad_x, grad_alpha


def ste_grads(grad: torch.Tensor, x: torch.Tensor, a: Clip, levels: int, signed: bool,
              need_x: bool = True, need_alpha: bool = True, need_gate: bool = False,
              xq: Optional[torch.Tensor] = None, xq_scratch: bool = False,
              grad_inplace: bool = False):
    """The backward of ``Q(x)`` given ``grad = dL/dQ``: ``(grad_x, grad_alpha, <grad, Q>)``.

    ``grad_x`` and ``grad_alpha`` as :func:`clip_ste_grads`; ``<grad, Q>`` (for
    a path-sampling gate) when ``need_gate``; ``None`` for what is not needed.
    On contiguous float32 CPU tensors one kernel pass does it all, recomputing
    ``Q`` on the fly (``xq`` unused; ``grad_x`` written into ``grad`` when
    ``grad_inplace``); otherwise torch ops, with ``xq`` (``Q(x)``, computed when
    not given, overwritten when ``xq_scratch``).
    """
    if not isinstance(a, torch.Tensor) and backend.kernels_apply(grad, x):
        grad_x, parts, dot = cpu_kernels.ste_backward(grad, x, a, levels, signed, need_x,
                                                      need_alpha, need_gate, grad_inplace)
        grad_alpha = None
        if parts is not None:
            inside, above, below = parts
            grad_alpha = torch.tensor(inside / a + above - (below if signed else 0.0),
                                      dtype=torch.float64)
        return grad_x, grad_alpha, None if dot is None else torch.tensor(dot,
                                                                          dtype=torch.float64)
    if xq is None and (need_alpha or need_gate):
        xq, xq_scratch = quantize_values(x, a, levels, signed), True
    dot = torch.dot(grad.reshape(-1), xq.reshape(-1)) if need_gate else None
    grad_x = grad_alpha = None
    if need_x or need_alpha:
        grad_x, grad_alpha = clip_ste_grads(grad, x, xq, a, signed, need_alpha, xq_scratch)
    return (grad_x if need_x else None), grad_alpha, dot


class _FakeQuantFn(torch.autograd.Function):
    """Fused forward/backward of the uniform quantizer (fewer passes, less memory).

    Gradients are those of :func:`fake_quant_reference` (see :func:`clip_ste_grads`).
    """

    @staticmethod
    def forward(ctx, x, alpha, levels: int, signed: bool):
        a = backend.clip_value(alpha)  # a learned clip must stay positive
        q = quantize_values(x, a, levels, signed)
        ctx.save_for_backward(x, q, alpha)
        ctx.meta = (a, levels, signed)
        return q

    @staticmethod
    def backward(ctx, grad):
        x, q, alpha = ctx.saved_tensors
        a, levels, signed = ctx.meta
        grad_x, grad_alpha, _ = ste_grads(grad.contiguous(), x, a, levels, signed,
                                          need_alpha=ctx.needs_input_grad[1], xq=q)
        if grad_alpha is not None:
            grad_alpha = grad_alpha.reshape(alpha.shape).to(alpha.dtype)
        return grad_x, grad_alpha, None, None


def fake_quant(x: torch.Tensor, alpha: torch.Tensor, bits: int,
               signed: bool) -> torch.Tensor:
    """Quantize ``x`` to ``bits`` with clip ``alpha`` (differentiable through STE).

    ``bits >= 32`` returns ``x`` unchanged.

    >>> import torch
    >>> fake_quant(torch.tensor([0.1, 0.9, 2.0]), torch.tensor(1.0), 1, False).tolist()
    [0.0, 1.0, 1.0]
    """
    if bits >= FLOAT_BITS:
        return x
    if signed and bits == 1:
        return fake_quant_reference(x, alpha, bits, signed)
    return _FakeQuantFn.apply(x, alpha, num_steps(bits, signed), signed)


@torch.no_grad()
def mse_clip(mag: torch.Tensor, bits: int, signed: bool, grid: int = 100) -> torch.Tensor:
    """The clip ``alpha`` in ``{max|x| * i / grid}`` with the least quantization MSE.

    ``mag`` holds magnitudes (``|x|``, or the positive part when unsigned); the
    error of the signed quantizer is symmetric, so magnitudes suffice.
    """
    top = mag.max().clamp(min=1e-8)
    best, best_err = top, None
    for i in range(1, grid + 1):
        alpha = top * i / grid
        err = (fake_quant(mag, alpha, bits, signed) - mag).pow(2).mean()
        if best_err is None or err < best_err:
            best, best_err = alpha, err
    return best


def reshape_weight(weight: torch.Tensor, k: float) -> torch.Tensor:
    """Clip ``weight`` to ``[-T, T]`` with ``T = k * mean|W|`` (Eq. 17-18)."""
    t = k * weight.detach().abs().mean()
    return torch.minimum(torch.maximum(weight, -t), t)
