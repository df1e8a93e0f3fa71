"""Let ``torch.load(weights_only=True)`` read the checkpoints mmengine writes.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True``, and resuming
from an mmengine checkpoint fails on the non-tensor objects its message hub
stores (``HistoryBuffer`` holding numpy arrays and scalars, and its
statistics methods, which pickle as ``getattr(HistoryBuffer, 'mean')``).
Rather than turning the safety off for every load, this allow-lists exactly
those types with ``torch.serialization.add_safe_globals`` (the narrow form of
the fix proposed upstream in mmengine PR #1650); ``getattr`` is replaced by a
version that resolves only HistoryBuffer's registered statistics methods.
"""
import pickle

import numpy as np
import torch


def _numpy_globals() -> list:
    out = [np.ndarray, np.dtype]
    core = getattr(np, '_core', None) or np.core
    multiarray = core.multiarray
    out += [multiarray._reconstruct, multiarray.scalar]
    # dtype classes such as numpy.dtypes.Float64DType (numpy >= 1.25)
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        out += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')]
    return out


def history_buffer_getattr(obj, name: str):
    """``getattr`` limited to ``HistoryBuffer``'s statistics methods."""
    from mmengine.logging.history_buffer import HistoryBuffer
    allowed = {'min', 'max', 'current', 'mean'} | set(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'refusing getattr({obj!r}, {name!r}) while loading a checkpoint: only '
        f'HistoryBuffer statistics methods are allowed')


def allow_mmengine_checkpoints() -> list:
    """Register the types mmengine checkpoints contain; returns them."""
    from mmengine.logging.history_buffer import HistoryBuffer
    safe = [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')] + _numpy_globals()
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch >= 2.4
        add(safe)
    return safe
