"""Quantized layers in their integer form, as ONNX QuantizeLinear/DequantizeLinear.

:func:`integer_spec` reads a calibrated ``QConv2d``/``QLinear`` and returns
its weight as integer codes with one scale, and its input quantizer as a
scale, a zero point and a code range. The codes are the fake quantizer's own,
computed with the same float32 operations (``round(clamp(w, -a, a) * (n / a))``
with ``n = 2^(b-1) - 1``), so dequantized they equal the fake-quantized weight
bit for bit.

:class:`QDQConv2d` / :class:`QDQLinear` run that form (eager, with the
arithmetic ONNX specifies) and export it (TorchScript exporter, through the
``symbolic`` of two autograd functions) as::

    x -> QuantizeLinear(s_a, zp) -> Clip(code range) -> DequantizeLinear -> Conv/Gemm
    codes -> DequantizeLinear(s_w, 0) ----------------------------------------^

Activations are ``uint8``: unsigned inputs with zero point 0, signed ones
with zero point 128 (code ``q + 128`` for the signed code ``q``; the same
values as an ``int8`` container, and the form onnxruntime fuses into integer
kernels on x86, where it does not fuse int8 activations). The integer
``Clip`` is there because a ``b``-bit activation uses fewer codes than its
container (``[0, 2^b - 1]``, or ``128 + [-(2^(b-1) - 1), 2^(b-1) - 1]``);
clamping integer codes to a range on the grid equals clamping the float input
to the clip before rounding, which is what the fake quantizer does. It is left
out when the container's own saturation is the range (8-bit unsigned).
"""
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..quant.bits import FLOAT_BITS
from ..quant.layers import QConv2d, QLinear
from ..quant.functional import num_steps

#: widest integer width an ONNX export holds (int8 / uint8 containers)
MAX_INT_BITS = 8
#: zero point of signed activations in their uint8 container
SIGNED_ZERO_POINT = 128


class ExportError(ValueError):
    """A model (or one of its layers) that the integer export cannot represent."""


@dataclass(frozen=True)
class IntegerSpec:
    """A quantized layer's integer description (what the sidecar JSON records)."""
    name: str
    kind: str                 # 'conv' or 'linear'
    w_bits: int               # 32: float weight
    a_bits: int               # 32: float input
    a_signed: Optional[bool]  # None when the input is float
    w_scale: Optional[float]  # float32 value: dequantized weight = code * w_scale
    a_scale: Optional[float]
    a_qmin: Optional[int]     # the input's code range
    a_qmax: Optional[int]
    a_clip: Optional[float]   # the learned clip alpha of the input (also at 32 bits with reshaping)

    @property
    def w_container(self) -> Optional[str]:
        if self.w_bits >= FLOAT_BITS:
            return None
        return 'int4' if self.w_bits <= 4 else 'int8'

    @property
    def a_container(self) -> Optional[str]:
        return None if self.a_bits >= FLOAT_BITS else 'uint8'

    @property
    def a_zero_point(self) -> Optional[int]:
        if self.a_bits >= FLOAT_BITS:
            return None
        return SIGNED_ZERO_POINT if self.a_signed else 0


def _check_width(name: str, field: str, bits: int) -> None:
    if MAX_INT_BITS < bits < FLOAT_BITS:
        raise ExportError(f'layer {name!r}: {field}={bits} cannot be held by the ONNX integer '
                          f'types (int4/int8 weights, uint8/int8 activations); allowed: '
                          f'1..{MAX_INT_BITS} or {FLOAT_BITS} (float)')


def _clip_of(quantizer, name: str, what: str) -> float:
    if not quantizer.is_calibrated:
        raise ExportError(
            f'layer {name!r}: its {what} quantizer was never calibrated (the checkpoint has no '
            f'quantizer state, e.g. a float checkpoint); export with --calibrate, or load a '
            f'checkpoint of the quantized model')
    return max(float(quantizer.alpha.detach()), 1e-8)  # as the fake quantizer clamps it


def weight_codes(layer, name: str = '?'):
    """``(codes, scale)``: the layer's weight as int8 codes and a float32 scale.

    ``codes * scale`` equals ``layer.quant_weight()`` exactly. Returns
    ``(None, None)`` for a float (32-bit) weight.
    """
    bits = layer.w_bits
    _check_width(name, 'w_bits', bits)
    if bits >= FLOAT_BITS:
        return None, None
    a = _clip_of(layer.w_quant, name, 'weight')
    with torch.no_grad():
        w = layer.w_quant.prepare(layer.weight.detach().float())  # reshaped, if so
        clamped = torch.clamp(w, -a, a)
        if bits == 1:  # binary: alpha * sign(x), sign(0) = 1
            return torch.where(clamped >= 0, 1, -1).to(torch.int8), np.float32(a)
        levels = num_steps(bits, True)
        codes = clamped.mul_(levels / a).round_()
    return codes.to(torch.int8), np.float32(a / levels)


def integer_spec(layer, name: str) -> IntegerSpec:
    """The integer description of a calibrated ``QConv2d``/``QLinear``."""
    kind = 'conv' if isinstance(layer, QConv2d) else 'linear'
    _check_width(name, 'w_bits', layer.w_bits)
    _check_width(name, 'a_bits', layer.a_bits)
    _, w_scale = weight_codes(layer, name)
    aq = layer.a_quant
    a_bits, a_signed = layer.a_bits, None
    a_scale = a_qmin = a_qmax = a_clip = None
    if aq.enabled:
        a_clip = _clip_of(aq, name, 'input')
        a_signed = bool(aq.signed) if aq.signed is not None else True
    if a_bits < FLOAT_BITS:
        if a_signed and a_bits == 1:
            raise ExportError(f'layer {name!r}: a 1-bit signed input (alpha * sign(x)) has no '
                              f'QuantizeLinear form; allowed a_bits: 2..{MAX_INT_BITS} signed, '
                              f'1..{MAX_INT_BITS} unsigned, or {FLOAT_BITS}')
        levels = num_steps(a_bits, a_signed)
        a_scale = float(np.float32(a_clip / levels))
        a_qmin, a_qmax = (-levels if a_signed else 0), levels
    return IntegerSpec(name, kind, layer.w_bits, a_bits, a_signed,
                       None if w_scale is None else float(w_scale), a_scale, a_qmin, a_qmax,
                       a_clip)


# ---------------------------------------------------------------- export ops
def _uint8_const(g, value: int):
    return g.op('Constant', value_t=torch.tensor(value, dtype=torch.uint8))


class QuantDequant(torch.autograd.Function):
    """``DequantizeLinear(Clip(QuantizeLinear(x)))``, per-tensor scale, uint8 container."""

    @staticmethod
    def forward(ctx, x, scale, zero_point, qmin: int, qmax: int):
        # ONNX: round half to even, saturate to the container; the Clip narrows it further
        # (the zero point shifts codes and range alike, so it cancels here)
        return torch.round(x / scale).clamp_(qmin, qmax).mul_(scale)

    @staticmethod
    def symbolic(g, x, scale, zero_point, qmin, qmax):
        q = g.op('QuantizeLinear', x, scale, zero_point)
        if (qmin, qmax) != (0, 255):
            offset = SIGNED_ZERO_POINT if qmin < 0 else 0
            q = g.op('Clip', q, _uint8_const(g, qmin + offset), _uint8_const(g, qmax + offset))
        return g.op('DequantizeLinear', q, scale, zero_point)


class DequantWeight(torch.autograd.Function):
    """``DequantizeLinear(codes, scale, 0)`` of an integer weight initializer."""

    @staticmethod
    def forward(ctx, codes, scale, zero_point):
        return codes.float() * scale

    @staticmethod
    def symbolic(g, codes, scale, zero_point):
        return g.op('DequantizeLinear', codes, scale, zero_point, axis_i=0)


class _QDQMixin:
    """Buffers and the two quantized operands shared by the integer layers."""

    def _init_qdq(self, layer, name: str) -> None:
        self.spec = integer_spec(layer, name)
        codes, w_scale = weight_codes(layer, name)
        if codes is None:
            self.register_buffer('weight', layer.weight.detach().clone())
        else:
            self.register_buffer('weight_codes', codes)
            self.register_buffer('weight_scale', torch.tensor(w_scale, dtype=torch.float32))
            self.register_buffer('weight_zero_point', torch.tensor(0, dtype=torch.int8))
        self.register_buffer('bias', None if layer.bias is None else layer.bias.detach().clone())
        s = self.spec
        if s.a_scale is not None:
            self.register_buffer('input_scale', torch.tensor(s.a_scale, dtype=torch.float32))
            self.register_buffer('input_zero_point', torch.tensor(s.a_zero_point,
                                                                  dtype=torch.uint8))

    def qdq_weight(self) -> torch.Tensor:
        if self.spec.w_bits >= FLOAT_BITS:
            return self.weight
        return DequantWeight.apply(self.weight_codes, self.weight_scale, self.weight_zero_point)

    def qdq_input(self, x: torch.Tensor) -> torch.Tensor:
        s = self.spec
        if s.a_scale is not None:
            return QuantDequant.apply(x, self.input_scale, self.input_zero_point, s.a_qmin,
                                      s.a_qmax)
        if s.a_clip is not None:  # 32 bits with a learned clip (distribution reshaping)
            return torch.clamp(x, -s.a_clip if s.a_signed else 0.0, s.a_clip)
        return x


class QDQConv2d(_QDQMixin, nn.Module):
    """A ``QConv2d`` in integer (QDQ) form."""

    def __init__(self, layer: QConv2d, name: str):
        super().__init__()
        if layer.padding_mode != 'zeros':
            raise ExportError(f'layer {name!r}: padding_mode={layer.padding_mode!r} is not '
                              f'exported; allowed: zeros')
        self._init_qdq(layer, name)
        self.stride, self.padding = layer.stride, layer.padding
        self.dilation, self.groups = layer.dilation, layer.groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.qdq_input(x), self.qdq_weight(), self.bias, self.stride,
                        self.padding, self.dilation, self.groups)


class QDQLinear(_QDQMixin, nn.Module):
    """A ``QLinear`` in integer (QDQ) form."""

    def __init__(self, layer: QLinear, name: str):
        super().__init__()
        self._init_qdq(layer, name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.qdq_input(x), self.qdq_weight(), self.bias)


def to_qdq(model: nn.Module, qlayers: dict) -> dict:
    """Replace each quantized layer of ``model`` (in place) by its integer form.

    ``qlayers`` maps names (relative to ``model``) to ``QConv2d``/``QLinear``.
    Returns name -> :class:`IntegerSpec`. Every layer is checked before any is
    replaced, so a model that cannot be exported is left as it was.
    """
    built = {}
    for name, layer in qlayers.items():
        cls = QDQConv2d if isinstance(layer, QConv2d) else QDQLinear
        built[name] = cls(layer, name)
    for name, qdq in built.items():
        parent_name, _, attr = name.rpartition('.')
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, qdq)
    return {name: m.spec for name, m in built.items()}
