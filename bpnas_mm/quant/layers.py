"""Quantized layers that *are* ``nn.Conv2d`` / ``nn.Linear``.

``QConv2d`` and ``QLinear`` keep the torch layer's parameters and state-dict
keys (quantizer state is added under ``w_quant.`` / ``a_quant.``, and may be
absent from a float checkpoint). Each layer quantizes its weight to ``w_bits``
and its *input* activation to ``a_bits``, so its BOPs are ``MACs * w_bits *
a_bits`` (paper Eq. 3). With both at 32 bits and no reshaping the forward pass
is the torch layer's own, bit for bit.

Distribution reshaping (paper Eq. 17-18) is the float pre-training mode:
``reshape_k=k`` clips the weight to ``T = k * mean|W|`` and, with
``a_bits=32``, the input goes through a learnable clip (Clip-ReLU).
"""
import inspect
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..registry import MODELS
from .bits import FLOAT_BITS, check_bits
from .functional import fake_quant
from .fused import PathGate, can_fuse, quant_input_conv2d, quant_input_linear
from .quantizer import Quantizer
from .spec import QuantizerSpec, layer_specs

#: the keywords of :func:`layer_specs`, accepted by the layers for brevity
SETTINGS = tuple(inspect.signature(layer_specs).parameters)


class QuantMixin:
    """Shared state and logic of the quantized layers (a mixin, not a module).

    Put first among the bases of a torch layer (``class QConv2d(QuantMixin,
    nn.Conv2d)``). It takes the quantization keywords out of the layer's own:
    ``w_spec`` and ``a_spec`` (:class:`~bpnas_mm.quant.spec.QuantizerSpec`), or
    the settings of :func:`~bpnas_mm.quant.spec.layer_specs` (``w_bits=4,
    a_bits=4, ...``). Its ``forward`` runs ``op(Q_a(x), Q_w(weight))``. A
    subclass provides the op: :meth:`_plain_op` (the torch op on already
    quantized inputs) and :meth:`_fused_op` (the same with the input
    quantization fused, see :mod:`.fused`).
    """

    #: set False to compare with (or debug) the unfused autograd path
    fusable = True

    def __init__(self, *args, w_spec: Optional[QuantizerSpec] = None,
                 a_spec: Optional[QuantizerSpec] = None, **kwargs):
        settings = {k: kwargs.pop(k) for k in SETTINGS if k in kwargs}
        super().__init__(*args, **kwargs)
        if settings and (w_spec is not None or a_spec is not None):
            raise ValueError(f'give w_spec/a_spec or {sorted(settings)}, not both')
        if w_spec is None or a_spec is None:
            default_w, default_a = layer_specs(**settings)
            w_spec, a_spec = w_spec or default_w, a_spec or default_a
        self.w_quant = Quantizer(w_spec)
        self.a_quant = Quantizer(a_spec)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.is_float:
            return super().forward(x)
        return self.quant_input_op(x, self.a_quant, self.quant_weight(), self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + self.quant_extra_repr()

    def _plain_op(self, x: torch.Tensor, weight: torch.Tensor,
                  bias: Optional[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError(f'{type(self).__name__} must define _plain_op')

    def _fused_op(self, x, alpha, bits: int, signed: bool, weight, bias, gate):
        raise NotImplementedError(f'{type(self).__name__} must define _fused_op')

    @property
    def reshape_k(self) -> Optional[float]:
        """Distribution reshaping of the weight (``T = k * mean|W|``), or None."""
        return self.w_quant.spec.reshape_k

    @reshape_k.setter
    def reshape_k(self, value: Optional[float]) -> None:
        self.w_quant.spec = self.w_quant.spec.replace(reshape_k=value)

    @property
    def w_bits(self) -> int:
        return self.w_quant.bits

    @w_bits.setter
    def w_bits(self, value: int) -> None:
        self.w_quant.bits = check_bits(value, 'w_bits')

    @property
    def a_bits(self) -> int:
        return self.a_quant.bits

    @a_bits.setter
    def a_bits(self, value: int) -> None:
        self.a_quant.bits = check_bits(value, 'a_bits')

    @property
    def is_float(self) -> bool:
        """True when the forward pass is exactly the torch layer's."""
        return (self.w_bits >= FLOAT_BITS and self.a_bits >= FLOAT_BITS
                and self.reshape_k is None)

    def quant_weight(self) -> torch.Tensor:
        """The weight as used in the forward pass (reshaped and/or quantized)."""
        return self.w_quant(self.weight)

    def quant_input_op(self, x: torch.Tensor, quantizer: Quantizer, weight: torch.Tensor,
                       bias: Optional[torch.Tensor], gate: Optional[torch.Tensor] = None
                       ) -> torch.Tensor:
        """``op(quantizer(x), weight, bias)``, fused when possible (see :mod:`.fused`).

        ``gate`` (a probability requiring grad) scales the input by
        ``p / stop_grad(p)``: same value, a path-sampling gradient to ``p``.
        """
        if self.fusable and can_fuse(quantizer.bits, x):
            quantizer.calibrate_from(x)
            signed = quantizer.signed_or_default
            return self._fused_op(x, quantizer.clip_for(x, signed), quantizer.bits, signed,
                                  weight, bias, gate)
        xq = quantizer(x)
        if gate is not None:
            xq = PathGate.apply(xq, gate)
        return self._plain_op(xq, weight, bias)

    def quant_extra_repr(self) -> str:
        return (f', w_bits={self.w_bits}, a_bits={self.a_bits}, '
                f'reshape_k={self.reshape_k}')


def _adopt(qmod: nn.Module, module: nn.Module) -> nn.Module:
    """Make ``qmod`` (built on the meta device) share ``module``'s parameters.

    Only ``weight``/``bias`` were created on 'meta' (the quantizers build their
    own CPU tensors); they are replaced by the float layer's own parameters.
    """
    qmod.weight = module.weight
    qmod.bias = module.bias
    qmod.train(module.training)
    return qmod.to(module.weight.device)


@MODELS.register_module()
class QConv2d(QuantMixin, nn.Conv2d):
    """``nn.Conv2d`` with weight/input fake quantization (``w_bits``, ``a_bits``)."""

    def _plain_op(self, x, weight, bias):
        return self._conv_forward(x, weight, bias)

    def _fused_op(self, x, alpha, bits, signed, weight, bias, gate):
        if self.padding_mode != 'zeros' or isinstance(self.padding, str):
            xq = fake_quant(x, alpha, bits, signed)
            return self._plain_op(xq if gate is None else PathGate.apply(xq, gate), weight, bias)
        return quant_input_conv2d(x, alpha, bits, signed, weight, bias, self.stride,
                                  self.padding, self.dilation, self.groups, gate)

    @classmethod
    def from_float(cls, module: nn.Conv2d, **quant_kwargs) -> 'QConv2d':
        """Build from an ``nn.Conv2d``, sharing its weight and bias."""
        if not isinstance(module, nn.Conv2d):
            raise TypeError(f'QConv2d.from_float needs an nn.Conv2d, got {type(module).__name__}')
        qmod = cls(module.in_channels, module.out_channels, module.kernel_size,
                   stride=module.stride, padding=module.padding,
                   dilation=module.dilation, groups=module.groups,
                   bias=module.bias is not None, padding_mode=module.padding_mode,
                   device='meta', **quant_kwargs)
        return _adopt(qmod, module)


@MODELS.register_module()
class QLinear(QuantMixin, nn.Linear):
    """``nn.Linear`` with weight/input fake quantization (``w_bits``, ``a_bits``)."""

    def _plain_op(self, x, weight, bias):
        return F.linear(x, weight, bias)

    def _fused_op(self, x, alpha, bits, signed, weight, bias, gate):
        return quant_input_linear(x, alpha, bits, signed, weight, bias, gate)

    @classmethod
    def from_float(cls, module: nn.Linear, **quant_kwargs) -> 'QLinear':
        """Build from an ``nn.Linear``, sharing its weight and bias."""
        if not isinstance(module, nn.Linear):
            raise TypeError(f'QLinear.from_float needs an nn.Linear, got {type(module).__name__}')
        qmod = cls(module.in_features, module.out_features,
                   bias=module.bias is not None, device='meta', **quant_kwargs)
        return _adopt(qmod, module)
