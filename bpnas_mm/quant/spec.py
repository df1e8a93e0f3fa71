"""``QuantizerSpec``: how one tensor is quantized, written once.

The patcher makes one spec for a layer's weight and one for its input from the
``quant=dict(...)`` rules; a supernet's candidate quantizers are copies with
another ``bits`` (``spec.replace(bits=4)``). A spec is frozen: a quantizer's
width changes by replacing its spec, never by editing one that others share.

What a spec does not hold is *state*: the learned clip ``alpha``, whether it
was calibrated, and a sign decided from data (``signed=None``) live in the
:class:`~bpnas_mm.quant.quantizer.Quantizer` and its state dict.

Quantization is per tensor (one clip); a per-channel clip would be one more
field here and a clip of shape ``(C, 1, ...)`` in the quantizer.
"""
import dataclasses
from dataclasses import dataclass
from typing import Optional

from ..utils.config_checks import check_bool, check_choice, check_number
from .bits import FLOAT_BITS, check_bits

INIT_MODES = ('mse', 'mean_abs', 'max', 'percentile')


@dataclass(frozen=True)
class QuantizerSpec:
    """The settings of a fake quantizer (paper Eq. 1, with PACT's learnable clip).

    Args:
        bits: 1..32; 32 disables quantization (but see ``clip_float``).
        signed: a symmetric signed range, unsigned ``[0, alpha]``, or ``None``
            to decide from the first batch (signed if it has a negative value).
        init: how ``alpha`` starts: ``'mse'`` (among ``init_k`` fractions of
            ``max|x|``, the clip with the least quantization MSE; at 32 bits
            the 99.9th percentile), ``'mean_abs'`` (``init_k * mean|x|``,
            capped at ``max|x|``), ``'max'``, or ``'percentile'`` (the
            ``init_k``-th percentile of ``|x|``).
        init_k: the grid size / factor / percentile of ``init``.
        grad_scale: LSQ's ``1 / sqrt(N * n)`` on the clip's gradient.
        batched: the first dimension is the batch (activations): the gradient
            scale counts elements per sample, calibration gathers all ranks.
        clip_float: at 32 bits, still clip to the learnable range (the
            Clip-ReLU of distribution reshaping, paper Eq. 17-18).
        reshape_k: clip to ``T = reshape_k * mean|x|`` *before* quantizing
            (distribution reshaping of weights, Eq. 17-18); ``None``: off.
    """
    bits: int = FLOAT_BITS
    signed: Optional[bool] = None
    init: str = 'mse'
    init_k: float = 100.0
    grad_scale: bool = True
    batched: bool = False
    clip_float: bool = False
    reshape_k: Optional[float] = None

    def __post_init__(self):
        set_ = object.__setattr__  # frozen: normalise once, here
        set_(self, 'bits', check_bits(self.bits, 'bits'))
        if self.signed not in (True, False, None):
            raise ValueError(f'signed must be True, False or None, got {self.signed!r}')
        check_choice(self.init, 'init', INIT_MODES)
        set_(self, 'init_k', check_number(self.init_k, 'init_k', low=0, open_low=True))
        for name in ('grad_scale', 'batched', 'clip_float'):
            check_bool(getattr(self, name), name)
        if self.reshape_k is not None:
            set_(self, 'reshape_k', check_number(self.reshape_k, 'reshape_k', low=0,
                                                 open_low=True))

    def replace(self, **changes) -> 'QuantizerSpec':
        """A copy with ``changes`` (e.g. ``bits=4`` for a candidate width)."""
        return dataclasses.replace(self, **changes)

    @property
    def quantizes(self) -> bool:
        """True when the values change: a width under 32 bits, or a float clip."""
        return self.bits < FLOAT_BITS or self.clip_float

    @property
    def changes_values(self) -> bool:
        """True unless the quantizer returns its input as it is."""
        return self.quantizes or self.reshape_k is not None


def layer_specs(w_bits: int = FLOAT_BITS, a_bits: int = FLOAT_BITS,
                a_signed: Optional[bool] = None, reshape_k: Optional[float] = None,
                w_init: str = 'mse', w_init_k: float = 100, a_init: str = 'mse',
                a_init_k: float = 100, alpha_grad_scale: bool = True):
    """``(weight spec, input spec)`` of one conv/linear layer, from the settings
    of ``quant=dict(...)``: weights signed, inputs batched (and Clip-ReLU'd at
    32 bits when reshaping)."""
    w_spec = QuantizerSpec(bits=w_bits, signed=True, init=w_init, init_k=w_init_k,
                           grad_scale=alpha_grad_scale, reshape_k=reshape_k)
    a_spec = QuantizerSpec(bits=a_bits, signed=a_signed, init=a_init, init_k=a_init_k,
                           grad_scale=alpha_grad_scale, batched=True,
                           clip_float=reshape_k is not None)
    return w_spec, a_spec
