"""Uniform fake quantizers with a learnable clipping range ``alpha`` (paper Eq. 1).

* signed (weights, and activations that can be negative):
  ``s = alpha / (2^(b-1) - 1)``, ``Q(x) = round(clamp(x, -alpha, alpha) / s) * s``;
  at ``b = 1`` the binary ``alpha * sign(x)``.
* unsigned (PACT clip-ReLU, activations after a ReLU):
  ``s = alpha / (2^b - 1)``, ``Q(x) = round(clamp(x, 0, alpha) / s) * s``.

Rounding uses the straight-through estimator, so ``dQ/dx`` is 1 inside the clip
range and 0 outside, and ``alpha`` receives the PACT/LSQ gradient (1 above the
range, ``round(x/s) - x/s`` scaled by ``ds/dalpha`` inside). ``alpha`` starts
from the data of the first batch seen (for weights: the weights), by default
as the clip that minimises the quantization MSE at this bit width (from every
rank's data when distributed).
"""
import math
from typing import Optional

import torch
from mmengine import dist
from torch import nn

from . import cpu_kernels
from ..utils.distributed import any_rank, gather_values
from .bits import FLOAT_BITS, check_bits
from .ste import round_ste, scale_grad, sign_ste


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


def quantize_values(x: torch.Tensor, a: float, levels: int, signed: bool,
                    out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``round(clamp(x) / s) * s`` with ``s = a / levels`` (no autograd), into ``out``
    or a new tensor (one pass on CPU float32, :mod:`~bpnas_mm.quant.cpu_kernels`)."""
    if cpu_kernels.applies(x) and (out is None or cpu_kernels.applies(out)):
        return cpu_kernels.quantize(x, a, levels, signed, out)
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

    Returns ``(grad_x, grad_alpha or None)``.
    """
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


def ste_grads(grad: torch.Tensor, x: torch.Tensor, a: float, levels: int, signed: bool,
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
    if cpu_kernels.applies(grad, x):
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
        a = max(float(alpha), 1e-8)  # a learned clip must stay positive
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


class Quantizer(nn.Module):
    """A fake quantizer with its own learnable ``alpha``.

    Args:
        bits (int): bit width, 1..32; 32 disables quantization.
        signed (bool | None): symmetric signed range, unsigned ``[0, alpha]``,
            or ``None`` to decide from the first batch (signed if it has a
            negative value). Decided values persist in the state dict.
        init (str): how ``alpha`` starts: ``'mse'`` (the clip among ``k``
            fractions of ``max|x|`` with the least quantization MSE; at 32
            bits, the Clip-ReLU of reshaping, the 99.9th percentile), ``'mean_abs'`` (``k * mean|x|``, capped at ``max|x|``),
            ``'max'`` or ``'percentile'`` (``k``-th percentile of ``|x|``).
        k (float): the grid size / factor / percentile of ``init``.
        clip_float (bool): at 32 bits, still clip to the learnable range
            (the Clip-ReLU of distribution reshaping, paper Eq. 17-18).
        grad_scale (bool): scale ``alpha``'s gradient by ``1 / sqrt(N * n)``
            (``N`` elements quantized, per sample when ``batched``; ``n``
            positive steps): LSQ's factor (Esser et al., ICLR 2020), which LSQ
            applies to its step ``s = alpha / n``; applied to ``alpha`` it damps
            the clip's relative updates ``n^2`` times more than LSQ's (the same
            at ternary weights, ``n = 1``). ``alpha``'s raw gradient is
            a sum over every element: on a weight tensor at 2 bits, plain SGD at
            a CIFAR learning rate throws it negative or to thousands within an
            epoch (measured: ternary layers silenced, 29 % top-1). The value of
            ``alpha`` is untouched; only its step size changes.
        batched (bool): the input's first dimension is the batch (activations).
    """

    INIT_MODES = ('mse', 'mean_abs', 'max', 'percentile')
    MAX_INIT_SAMPLES = 1_000_000

    def __init__(self, bits: int = FLOAT_BITS, signed: Optional[bool] = None,
                 init: str = 'mse', k: float = 100,
                 clip_float: bool = False, grad_scale: bool = True, batched: bool = False):
        super().__init__()
        if init not in self.INIT_MODES:
            raise ValueError(f'init must be one of {self.INIT_MODES}, got {init!r}')
        self.bits = check_bits(bits, 'bits')
        self.init = init
        self.k = float(k)
        self.clip_float = clip_float
        self.grad_scale = bool(grad_scale)
        self.batched = bool(batched)
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.register_buffer('initialized', torch.tensor(False))
        # -1: undecided (auto), 0: unsigned, 1: signed
        self.register_buffer('signed_code', torch.tensor(
            -1 if signed is None else int(bool(signed)), dtype=torch.int8))
        self.calibrate = True  #: set False to keep alpha untouched (shape probes)

    @property
    def signed(self) -> Optional[bool]:
        code = int(self.signed_code)
        return None if code < 0 else bool(code)

    @property
    def enabled(self) -> bool:
        return self.bits < FLOAT_BITS or self.clip_float

    def extra_repr(self) -> str:
        return (f'bits={self.bits}, signed={self.signed}, init={self.init!r}, '
                f'k={self.k}, clip_float={self.clip_float}, grad_scale={self.grad_scale}')

    def clip_for(self, x: torch.Tensor, signed: bool) -> torch.Tensor:
        """``alpha`` as used on ``x`` (its gradient scaled when ``grad_scale``)."""
        alpha = self.alpha.to(x.dtype)
        if (self.grad_scale and alpha.requires_grad and torch.is_grad_enabled()
                and self.bits < FLOAT_BITS and x.numel() > 0):
            steps = max(num_steps(self.bits, signed), 1)  # binary: one level each side
            per_sample = x.numel() // x.shape[0] if self.batched and x.dim() > 1 else x.numel()
            alpha = scale_grad(alpha, 1.0 / math.sqrt(per_sample * steps))
        return alpha

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set ``alpha`` (and an undecided sign) from the data ``x``.

        Activations (``batched``) are calibrated from every rank's ``x`` together,
        as one process with the global batch would (exactly so up to
        ``MAX_INIT_SAMPLES`` values; beyond, each rank draws its share), and
        every rank makes the same collectives whether its ``x`` is empty or not
        (a RoI head's input on an image without proposals). When no rank has
        data the quantizer stays uncalibrated everywhere.
        """
        world = dist.get_world_size() if self.batched else 1
        x = x.detach().float()
        negative = bool((x < 0).any()) if self.signed is None else False
        values = x.flatten()
        limit = self.MAX_INIT_SAMPLES // world
        if values.numel() > limit:  # bounded cost (and quantile's size limit)
            gen = torch.Generator(device=values.device).manual_seed(0)
            values = values[torch.randint(0, values.numel(), (limit,), generator=gen,
                                          device=values.device)]
        if world > 1:
            negative = any_rank(negative, device=values.device)
            values = gather_values(values)
        if values.numel() == 0:
            return
        if self.signed is None:
            self.signed_code.fill_(int(negative))
        mag = values.abs() if self.signed else values.clamp(min=0)
        if self.init == 'mse' and self.bits >= FLOAT_BITS:
            value = torch.quantile(mag, 0.999)  # Clip-ReLU: cut the long tail
        elif self.init == 'max':
            value = mag.max()
        elif self.init == 'mse':
            value = mse_clip(mag, self.bits, self.signed, int(self.k))
        elif self.init == 'mean_abs':
            value = torch.minimum(self.k * mag.mean(), mag.max())
        else:
            value = torch.quantile(mag, self.k / 100.0)
        self.alpha.data.fill_(float(value.clamp(min=1e-8)))
        self.initialized.fill_(True)

    def fused_args(self, x: torch.Tensor):
        """``(alpha, bits, signed)`` for a fused input-quantizing op, or None.

        Calibrates ``alpha`` from ``x`` first when needed (as ``forward`` would).
        """
        from .fused import can_fuse
        if self.bits >= FLOAT_BITS or not can_fuse(self.bits, x):
            return None
        if not bool(self.initialized) and self.calibrate:
            self.initialize(x)
        signed = True if self.signed is None else self.signed
        return self.clip_for(x, signed), self.bits, signed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if x.dtype in LOW_PRECISION:  # AMP: quantize in float32 (bf16 has 8 mantissa bits)
            x = x.float()
        if not bool(self.initialized) and self.calibrate:
            self.initialize(x)
        signed = self.signed
        if signed is None:  # never calibrated (calibration frozen): treat as signed
            signed = True
        alpha = self.clip_for(x, signed)
        if self.bits >= FLOAT_BITS:
            return clip(x, alpha, signed)
        return fake_quant(x, alpha, self.bits, signed)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        # A float checkpoint has no quantizer state: keep the defaults (alpha is
        # then calibrated from data) instead of failing a strict load.
        own = [prefix + n for n in ('alpha', 'initialized', 'signed_code')]
        before = len(missing_keys)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)
        if not any(k in state_dict for k in own):
            del missing_keys[before:]
