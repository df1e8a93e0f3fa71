"""Seed a fixed mixed-precision model with a searched supernet's shared weights."""
import re
from typing import Dict

import torch


def supernet_to_fixed_state(state: Dict[str, torch.Tensor], bits: Dict[str, tuple]
                            ) -> Dict[str, torch.Tensor]:
    """Map a ``BPNAS`` state dict onto the task model of a ``QuantModel``.

    Args:
        state: the supernet's state dict (``architecture.`` / ``module.``
            prefixes are stripped; ``arch_params`` dropped).
        bits: layer name -> ``(w_bits, a_bits)`` of the fixed model.

    Returns:
        A state dict for the task model: shared weights as they are, and for
        each mixed layer the clips of its chosen widths (``w_quants.<w>`` ->
        ``w_quant``, ``a_quants.<a>`` -> ``a_quant``); the other candidates'
        clips are dropped.
    """
    out = {}
    for key, value in state.items():
        key = re.sub(r'^module\.', '', key)
        if not key.startswith('architecture.'):
            continue  # arch_params, the wrapper's data_preprocessor
        out[key[len('architecture.'):]] = value
    mixed = {k.split('.w_quants.')[0] for k in out if '.w_quants.' in k}
    for layer in mixed:
        if layer not in bits:
            raise KeyError(f'supernet layer {layer!r} is not a quantized layer of the model')
        w, a = bits[layer]
        for sub in ('w_quant', 'a_quant'):  # the supernet's unused base quantizers
            for k in [k for k in out if k.startswith(f'{layer}.{sub}.')]:
                del out[k]
        for kind, width in (('w', w), ('a', a)):
            prefix = f'{layer}.{kind}_quants.'
            chosen = f'{prefix}{width}.'
            for k in [k for k in out if k.startswith(prefix)]:
                value = out.pop(k)
                if k.startswith(chosen):
                    out[f'{layer}.{kind}_quant.' + k[len(chosen):]] = value
            if f'{layer}.{kind}_quant.alpha' not in out:
                raise KeyError(f'layer {layer!r}: the supernet has no {kind}_bits={width} '
                               f'candidate to take the clip from')
    return out
