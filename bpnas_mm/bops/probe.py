"""Shape probe: per-layer MACs of every conv/linear layer at a given input size.

A forward pass under ``torch.no_grad`` with hooks records, for each
``nn.Conv2d`` / ``nn.Linear``, the MACs of every call (a layer applied to
several inputs, such as an RPN conv shared by all FPN levels, sums them):

* conv: ``N * C_out * H_out * W_out * (C_in / groups) * K_h * K_w``;
* linear: ``rows * in_features * out_features`` (``rows`` = input numel / in).

MACs are per image (divided by the batch size). Layers of a RoI head see as
many rows as the detector happened to propose; ``roi_layers`` and
``num_rois`` restate them per assumed RoI count (``macs_per_roi * num_rois``).
"""
import contextlib
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Sequence

import torch
from torch import nn

from ..quant.quantizer import Quantizer
from ..quant.select import match, quantizable_layers


@dataclass
class LayerShape:
    """What the probe measured for one layer."""
    name: str
    kind: str      #: 'conv' or 'linear'
    macs: int      #: multiply-accumulates per image
    params: int    #: number of weights (bias not counted)
    calls: int     #: forward calls seen (e.g. one per FPN level)
    rows: int = 0  #: RoIs (linear rows / conv batch) assumed, for RoI layers


def conv_macs(module: nn.Conv2d, out: torch.Tensor) -> int:
    """MACs of one conv call given its output ``(N, C_out, H, W)``.

    >>> conv = nn.Conv2d(16, 32, 3, padding=1, groups=2)
    >>> conv_macs(conv, torch.zeros(1, 32, 8, 8))
    147456
    """
    k = module.kernel_size[0] * module.kernel_size[1]
    return int(out.numel() * (module.in_channels // module.groups) * k)


def linear_macs(module: nn.Linear, inp: torch.Tensor) -> int:
    """MACs of one linear call: ``rows * in_features * out_features``."""
    rows = inp.numel() // module.in_features
    return int(rows * module.in_features * module.out_features)


@contextlib.contextmanager
def frozen_calibration(model: nn.Module):
    """Run ``model`` without letting quantizers calibrate ``alpha`` from the data."""
    quantizers = [m for m in model.modules() if isinstance(m, Quantizer)]
    saved = [q.calibrate for q in quantizers]
    for q in quantizers:
        q.calibrate = False
    try:
        yield
    finally:
        for q, s in zip(quantizers, saved):
            q.calibrate = s


def probe_layers(model: nn.Module, forward: Callable[[nn.Module], object], batch_size: int = 1,
                 roi_layers: Sequence[str] = (), num_rois: Optional[int] = None
                 ) -> Dict[str, LayerShape]:
    """Measure MACs/params of every conv/linear layer with one forward pass.

    Args:
        model: the model (float or quantized).
        forward: called as ``forward(model)``; runs one pass at the input size.
        batch_size: images in that pass (MACs are divided by it).
        roi_layers: patterns of layers that run once per RoI.
        num_rois: RoIs per image assumed for ``roi_layers`` (required with them).

    Returns:
        dict name -> :class:`LayerShape`, in the order the layers first ran,
        for every layer that ran (layers that never ran are left out).
    """
    layers = quantizable_layers(model)
    macs = {n: 0 for n in layers}
    calls = {n: 0 for n in layers}
    rows = {n: 0 for n in layers}
    order = []

    def hook(name):
        def fn(mod, inputs, out):
            if isinstance(mod, nn.Conv2d):
                macs[name] += conv_macs(mod, out)
                rows[name] += out.shape[0]
            else:
                macs[name] += linear_macs(mod, inputs[0])
                rows[name] += inputs[0].numel() // mod.in_features
            if not calls[name]:
                order.append(name)
            calls[name] += 1
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad(), frozen_calibration(model):
            forward(model)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    roi_names = set(match(list(roi_layers), order, 'bops.roi_layers')) if roi_layers else set()
    if roi_names and not num_rois:
        raise ValueError('num_rois must be a positive integer when roi_layers is given')
    out = {}
    for name in order:
        mod = layers[name]
        total, n_rows = macs[name], 0
        if name in roi_names:
            total = total * num_rois // max(rows[name], 1)
            n_rows = num_rois
        else:
            total //= batch_size
        kind = 'conv' if isinstance(mod, nn.Conv2d) else 'linear'
        out[name] = LayerShape(name, kind, int(total), int(mod.weight.numel()),
                               calls[name], n_rows)
    return out
