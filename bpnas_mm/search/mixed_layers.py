"""Supernet layers: one shared weight, several ``(w_bits, a_bits)`` candidates.

A mixed layer computes paper Eq. 6, ``sum_j p_j * op_j(x)``, where ``op_j``
quantizes the input to ``a_j`` and the shared weight to ``w_j`` bits (each bit
width has its own learnable clip). The probabilities ``p`` are set from outside
(:attr:`arch_probs`, by the algorithm that owns the architecture parameters).

Computed exactly but cheaply: a conv/linear is linear in each argument, so the
candidates that share an activation width share one op on the p-weighted sum of
their quantized weights (or, when fewer weight widths than activation widths
exist, the other way round). 8 CIFAR candidates cost 3 convolutions, not 8.

Path sampling (:attr:`arch_choice` set): only candidate ``j`` runs, and its output
is ``op_j(x) * p_j / stop_grad(p_j)`` (value unchanged), so theta still gets the
gradient ``<dL/dy, op_j(x)> * grad(log p_j)``, an estimate of the full mixture's
gradient. The op is linear, so the factor is applied to its quantized input
(and bias) instead of its output (:mod:`bpnas_mm.quant.fused`): no
activation-sized tensor is added.
"""
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from ..quant.layers import QConv2d, QLinear
from ..quant.quantizer import Quantizer
from .candidates import Candidate, check_candidates


class MixedMixin:
    """Candidate quantizers and the Eq. 6 forward shared by conv and linear
    (first among the bases of a :class:`~bpnas_mm.quant.layers.QuantMixin` layer)."""

    def __init__(self, *args, candidates=((32, 32),), **kwargs):
        super().__init__(*args, **kwargs)
        self._init_mixed(candidates)

    def extra_repr(self) -> str:
        return super().extra_repr() + f', candidates={self.candidates}'

    def _init_mixed(self, candidates: Sequence[Candidate]) -> None:
        self.candidates: List[Candidate] = check_candidates(candidates)
        w_spec, a_spec = self.w_quant.spec, self.a_quant.spec
        self.w_quants = nn.ModuleDict({str(w): Quantizer(w_spec.replace(bits=w))
                                       for w in sorted({w for w, _ in self.candidates})})
        self.a_quants = nn.ModuleDict({str(a): Quantizer(a_spec.replace(bits=a))
                                       for a in sorted({a for _, a in self.candidates})})
        self.arch_probs: Optional[torch.Tensor] = None
        self.arch_choice: Optional[int] = None

    def _qweights(self, widths) -> Dict[int, torch.Tensor]:
        return {b: self.w_quants[str(b)](self.weight) for b in widths}

    def _add_bias(self, out: torch.Tensor, scale=None) -> torch.Tensor:
        if self.bias is None:
            return out
        bias = self.bias if scale is None else self.bias * scale
        shape = [1] * out.dim()
        shape[1 if isinstance(self, nn.Conv2d) else -1] = -1
        return out + bias.view(shape)

    def candidate_forward(self, x: torch.Tensor, j: int,
                          gate: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``op_j(x)``: the layer at candidate ``j``'s bit widths.

        With ``gate`` (a probability ``p_j`` requiring grad) the result is
        ``op_j(x) * p_j / stop_grad(p_j)``: the same value, with a gradient to p.
        """
        w_bits, a_bits = self.candidates[j]
        wq = self._qweights([w_bits])[w_bits]
        quantizer = self.a_quants[str(a_bits)]
        if gate is None:
            return self.quant_input_op(x, quantizer, wq, self.bias)
        bias = None if self.bias is None else self.bias * (gate / gate.detach())
        return self.quant_input_op(x, quantizer, wq, bias, gate)

    def naive_forward(self, x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Eq. 6 term by term (the reference the composite form must equal)."""
        return sum(p * self.candidate_forward(x, j) for j, p in enumerate(probs))

    def composite_forward(self, x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """Eq. 6 with one op per distinct activation (or weight) width."""
        w_widths = sorted({w for w, _ in self.candidates})
        a_widths = sorted({a for _, a in self.candidates})
        out = None
        if len(a_widths) <= len(w_widths):
            wq = self._qweights(w_widths)
            for a in a_widths:
                w_sum = sum(probs[j] * wq[w] for j, (w, aa) in enumerate(self.candidates)
                            if aa == a)
                y = self.quant_input_op(x, self.a_quants[str(a)], w_sum, None)
                out = y if out is None else out + y
        else:
            wq = self._qweights(w_widths)
            xq = {a: self.a_quants[str(a)](x) for a in a_widths}
            for w in w_widths:
                x_sum = sum(probs[j] * xq[a] for j, (ww, a) in enumerate(self.candidates)
                            if ww == w)
                y = self._plain_op(x_sum, wq[w], None)
                out = y if out is None else out + y
        return self._add_bias(out, probs.sum())

    def calibrate_candidates(self, x: torch.Tensor) -> None:
        """Calibrate every candidate's clip not yet set, from this input and weight.

        Done on the first forward, so that path sampling does not calibrate a
        width in the middle of the search, when it is first drawn (calibration
        is the expensive part of a quantizer's life: an MSE sweep of clips).
        """
        for quantizers, data in ((self.w_quants, self.weight), (self.a_quants, x)):
            for q in quantizers.values():
                if q.calibrate and not q.is_calibrated:
                    q.initialize(data)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calibrate_candidates(x)
        probs, choice = self.arch_probs, self.arch_choice
        if choice is not None:
            gate = probs[choice] if probs is not None and probs.requires_grad else None
            return self.candidate_forward(x, choice, gate)
        if probs is not None:
            return self.composite_forward(x, probs)
        raise RuntimeError(
            f'{type(self).__name__} ran without a configuration: run a supernet inside '
            f'`with model.mutator.applied(probs, choice):` (the mutator sets and resets the '
            f'probabilities or the chosen candidate of every mixed layer)')

    def to_fixed(self, j: int):
        """The fixed layer of candidate ``j``: a :class:`QConv2d`/:class:`QLinear`
        sharing this layer's weight and bias, with copies of candidate ``j``'s
        quantizers (their specs and state: clip, calibration, sign)."""
        w_bits, a_bits = self.candidates[j]
        w_quant, a_quant = self.w_quants[str(w_bits)], self.a_quants[str(a_bits)]
        fixed_cls = QConv2d if isinstance(self, nn.Conv2d) else QLinear
        fixed = fixed_cls.from_float(self, w_spec=w_quant.spec, a_spec=a_quant.spec)
        fixed.w_quant.load_state_dict(w_quant.state_dict())
        fixed.a_quant.load_state_dict(a_quant.state_dict())
        fixed.fixed_precision = False
        return fixed


class MixedQConv2d(MixedMixin, QConv2d):
    """A :class:`QConv2d` with candidate bit widths (a supernet edge)."""


class MixedQLinear(MixedMixin, QLinear):
    """A :class:`QLinear` with candidate bit widths (a supernet edge)."""


def to_mixed(layer, candidates: Sequence[Candidate]):
    """A mixed layer sharing ``layer``'s (QConv2d/QLinear) weight, bias and specs."""
    specs = dict(w_spec=layer.w_quant.spec,
                 a_spec=layer.a_quant.spec.replace(signed=layer.a_quant.signed))
    if isinstance(layer, QConv2d):
        mixed = MixedQConv2d.from_float(layer, candidates=candidates, **specs)
    elif isinstance(layer, QLinear):
        mixed = MixedQLinear.from_float(layer, candidates=candidates, **specs)
    else:
        raise TypeError(f'to_mixed needs a QConv2d or QLinear, got {type(layer).__name__}')
    mixed.fixed_precision = False
    return mixed
