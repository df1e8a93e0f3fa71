"""Uniform fake quantizers with a learnable clipping range ``alpha`` (paper Eq. 1).

The arithmetic (grids, STE gradients, the MSE clip) is in
:mod:`bpnas_mm.quant.functional`; this module holds the state: ``alpha``, the
sign, whether and how ``alpha`` was calibrated. ``alpha`` starts from the data
of the first batch seen (for weights: the weights), by default as the clip that
minimises the quantization MSE at this bit width (from every rank's data when
distributed).
"""
import math
from typing import Optional

import torch
from mmengine import dist
from torch import nn

from ..utils.distributed import any_rank, gather_values
from .bits import FLOAT_BITS, check_bits
from .functional import LOW_PRECISION, clip, fake_quant, mse_clip, num_steps
from .ste import scale_grad


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

    def calibrate_from(self, x: torch.Tensor) -> None:
        """Set ``alpha`` from ``x`` unless it is set or calibration is frozen."""
        if not bool(self.initialized) and self.calibrate:
            self.initialize(x)

    @property
    def signed_or_default(self) -> bool:
        """The sign in use (never calibrated, calibration frozen: signed)."""
        return True if self.signed is None else self.signed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return x
        if x.dtype in LOW_PRECISION:  # AMP: quantize in float32 (bf16 has 8 mantissa bits)
            x = x.float()
        self.calibrate_from(x)
        signed = self.signed_or_default
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
