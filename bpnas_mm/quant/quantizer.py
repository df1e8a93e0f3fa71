"""Uniform fake quantizers with a learnable clipping range ``alpha`` (paper Eq. 1).

The arithmetic (grids, STE gradients, the MSE clip) is in
:mod:`bpnas_mm.quant.functional`; this module holds the state: ``alpha``, the
sign, whether and how ``alpha`` was calibrated. ``alpha`` starts from the data
of the first batch seen (for weights: the weights), by default as the clip that
minimises the quantization MSE at this bit width (from every rank's data when
distributed).
"""
import math
from typing import Optional, Union

import torch
from mmengine import dist
from torch import nn

from ..utils.distributed import any_rank, gather_values
from .bits import FLOAT_BITS
from .functional import (LOW_PRECISION, clip, fake_quant, mse_clip, num_steps,
                         reshape_weight)
from .spec import INIT_MODES, QuantizerSpec
from .ste import scale_grad


class Quantizer(nn.Module):
    """A fake quantizer with its own learnable ``alpha``, set up by a
    :class:`~bpnas_mm.quant.spec.QuantizerSpec`.

    ``Quantizer(spec)``, or ``Quantizer(bits, **fields)`` for a spec built on
    the spot (``Quantizer(4, signed=True, init='max')``). ``grad_scale`` scales
    ``alpha``'s gradient by ``1 / sqrt(N * n)`` (``N`` elements quantized, per
    sample when ``batched``; ``n`` positive steps): LSQ's factor (Esser et al.,
    ICLR 2020), which LSQ applies to its step ``s = alpha / n``; applied to
    ``alpha`` it damps the clip's relative updates ``n^2`` times more than
    LSQ's (the same at ternary weights, ``n = 1``). ``alpha``'s raw gradient is
    a sum over every element: on a weight tensor at 2 bits, plain SGD at a
    CIFAR learning rate throws it negative or to thousands within an epoch
    (measured: ternary layers silenced, 29 % top-1). The value of ``alpha`` is
    untouched; only its step size changes.

    The state (``alpha``; ``initialized``; ``signed_code``, the sign decided
    from data) is in the state dict; the forward pass reads Python copies of
    the last two, so it never waits for the device.
    """

    INIT_MODES = INIT_MODES
    MAX_INIT_SAMPLES = 1_000_000

    def __init__(self, spec: Union[QuantizerSpec, int, None] = None, **fields):
        super().__init__()
        if isinstance(spec, QuantizerSpec):
            spec = spec.replace(**fields) if fields else spec
        else:
            if spec is not None:
                fields = dict(fields, bits=spec)
            spec = QuantizerSpec(**fields)
        self.spec = spec
        self.alpha = nn.Parameter(torch.tensor(1.0))
        self.register_buffer('initialized', torch.tensor(False))
        # -1: undecided (auto), 0: unsigned, 1: signed
        self.register_buffer('signed_code', torch.tensor(
            -1 if spec.signed is None else int(spec.signed), dtype=torch.int8))
        self._initialized = False
        self._signed_code = int(self.signed_code)
        self.calibrate = True  #: set False to keep alpha untouched (shape probes)

    @property
    def bits(self) -> int:
        return self.spec.bits

    @bits.setter
    def bits(self, value: int) -> None:
        self.spec = self.spec.replace(bits=value)

    @property
    def is_calibrated(self) -> bool:
        """``alpha`` was set from data (or loaded so)."""
        return self._initialized

    @property
    def signed(self) -> Optional[bool]:
        code = self._signed_code
        return None if code < 0 else bool(code)

    @property
    def enabled(self) -> bool:
        return self.spec.changes_values

    def extra_repr(self) -> str:
        spec = self.spec
        return (f'bits={spec.bits}, signed={self.signed}, init={spec.init!r}, '
                f'init_k={spec.init_k}, clip_float={spec.clip_float}, '
                f'grad_scale={spec.grad_scale}'
                + ('' if spec.reshape_k is None else f', reshape_k={spec.reshape_k}'))

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` as it is quantized: reshaped first when the spec says so (Eq. 17-18)."""
        k = self.spec.reshape_k
        return x if k is None else reshape_weight(x, k)

    def clip_for(self, x: torch.Tensor, signed: bool) -> torch.Tensor:
        """``alpha`` as used on ``x`` (its gradient scaled when ``grad_scale``)."""
        alpha = self.alpha.to(x.dtype)
        bits = self.spec.bits
        if (self.spec.grad_scale and alpha.requires_grad and torch.is_grad_enabled()
                and bits < FLOAT_BITS and x.numel() > 0):
            steps = max(num_steps(bits, signed), 1)  # binary: one level each side
            per_sample = (x.numel() // x.shape[0] if self.spec.batched and x.dim() > 1
                          else x.numel())
            alpha = scale_grad(alpha, 1.0 / math.sqrt(per_sample * steps))
        return alpha

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set ``alpha`` (and an undecided sign) from the data ``x`` (as passed to
        :meth:`forward`: reshaped here when the spec says so).

        Activations (``batched``) are calibrated from every rank's ``x`` together,
        as one process with the global batch would (exactly so up to
        ``MAX_INIT_SAMPLES`` values; beyond, each rank draws its share), and
        every rank makes the same collectives whether its ``x`` is empty or not
        (a RoI head's input on an image without proposals). When no rank has
        data the quantizer stays uncalibrated everywhere.
        """
        spec = self.spec
        world = dist.get_world_size() if spec.batched else 1
        x = self.prepare(x.detach().float())
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
            self._set_state(signed_code=int(negative))
        mag = values.abs() if self.signed else values.clamp(min=0)
        if spec.init == 'mse' and spec.bits >= FLOAT_BITS:
            value = torch.quantile(mag, 0.999)  # Clip-ReLU: cut the long tail
        elif spec.init == 'max':
            value = mag.max()
        elif spec.init == 'mse':
            value = mse_clip(mag, spec.bits, self.signed, int(spec.init_k))
        elif spec.init == 'mean_abs':
            value = torch.minimum(spec.init_k * mag.mean(), mag.max())
        else:
            value = torch.quantile(mag, spec.init_k / 100.0)
        self.alpha.data.fill_(float(value.clamp(min=1e-8)))
        self._set_state(initialized=True)

    def _set_state(self, initialized: Optional[bool] = None,
                   signed_code: Optional[int] = None) -> None:
        """Write a state buffer and its Python copy together."""
        if initialized is not None:
            self.initialized.fill_(bool(initialized))
            self._initialized = bool(initialized)
        if signed_code is not None:
            self.signed_code.fill_(int(signed_code))
            self._signed_code = int(signed_code)

    def calibrate_from(self, x: torch.Tensor) -> None:
        """Set ``alpha`` from ``x`` unless it is set or calibration is frozen."""
        if not self._initialized and self.calibrate:
            self.initialize(x)

    @property
    def signed_or_default(self) -> bool:
        """The sign in use (never calibrated, calibration frozen: signed)."""
        return True if self.signed is None else self.signed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spec = self.spec
        if not spec.changes_values:
            return x
        if x.dtype in LOW_PRECISION:  # AMP: quantize in float32 (bf16 has 8 mantissa bits)
            x = x.float()
        if not spec.quantizes:
            return self.prepare(x)
        self.calibrate_from(x)  # from x as given (calibration prepares it too)
        x = self.prepare(x)
        signed = self.signed_or_default
        alpha = self.clip_for(x, signed)
        if spec.bits >= FLOAT_BITS:
            return clip(x, alpha, signed)
        return fake_quant(x, alpha, spec.bits, signed)

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
        # the Python copies follow what was loaded (one read, at load time)
        self._initialized = bool(self.initialized)
        self._signed_code = int(self.signed_code)
