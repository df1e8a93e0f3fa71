"""Seed a fixed mixed-precision model with a searched supernet's weights.

The supernet's state is loaded the way it was saved: every searched layer of
the fixed model becomes, for the load, the mixed layer of the search's
candidates (sharing the fixed layer's weight), so the state dict fits module
for module and any mismatch is a missing or unexpected key; then each mixed
layer turns itself into the fixed layer of its chosen candidate
(:meth:`~bpnas_mm.search.mixed_layers.MixedMixin.to_fixed`), keeping that
candidate's clips.
"""
import re
from typing import Dict

import torch

from ..search.mixed_layers import to_mixed
from ..utils.user_files import InputError, load_fitting, shown
from .patcher import set_submodule


def task_state(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The task model's part of a ``BPNAS`` state dict (``module.`` and
    ``architecture.`` prefixes stripped; theta and the wrapper dropped)."""
    out = {}
    for key, value in state.items():
        key = re.sub(r'^module\.', '', key)
        if key.startswith('architecture.'):
            out[key[len('architecture.'):]] = value
    return out


def load_supernet(model, state: Dict[str, torch.Tensor], path, what: str) -> None:
    """Load a search checkpoint's ``state`` into ``model`` (a ``QuantModel`` that
    applied the search's mixed-precision file)."""
    mp = model.mixed_precision
    candidates = [tuple(c) for c in (mp.extra.get('candidates') or [])] if mp else []
    if not candidates:
        where = f' ({shown(mp.path)})' if mp is not None and mp.path else ''
        raise InputError(f'{what}: loading a supernet needs the mixed-precision file its '
                         f'search wrote (model.mixed_precision{where}): it names the '
                         f'candidates the supernet was built with')
    searched = {n: layer for n, layer in model.qlayers.items() if not layer.fixed_precision}
    chosen = {}
    for name, layer in searched.items():
        bits = (layer.w_bits, layer.a_bits)
        if bits not in candidates:
            raise InputError(f'{what}: layer {name!r} is at {bits} in the file, which is not '
                             f'among the search\'s candidates {candidates}')
        chosen[name] = candidates.index(bits)
    mixed = {n: to_mixed(layer, candidates) for n, layer in searched.items()}
    for name, layer in mixed.items():
        set_submodule(model.architecture, name, layer)
    try:
        load_fitting(model.architecture, task_state(state), path, what)
    except Exception:
        for name, layer in searched.items():  # leave the model as it was
            set_submodule(model.architecture, name, layer)
        raise
    for name, layer in mixed.items():
        fixed = layer.to_fixed(chosen[name])
        set_submodule(model.architecture, name, fixed)
        model.qlayers[name] = fixed
