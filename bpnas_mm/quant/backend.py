"""Which code runs the quantizer's element-wise passes: one choice per process.

* ``'cpu-kernels'``: the one-pass C kernels of :mod:`.cpu_kernels` for
  contiguous float32 CPU tensors (torch ops for every other tensor), when they
  compile and load;
* ``'torch'``: torch ops for every tensor (``BPNAS_MM_CPU_KERNELS=0``, or no C
  compiler).

The choice is made at the first quantized step and logged once;
:func:`use` sets another for a block of code (tests and benchmarks compare the
two). Independently of the backend, the clip enters the arithmetic as a Python
float on CPU (free there, and what the C kernels take) and as a 0-d tensor on
other devices (:func:`clip_value`), so a CUDA step never waits for the device
to read a clip.
"""
import contextlib
import os
from typing import Iterator, Union

import torch
from mmengine.logging import print_log

from . import cpu_kernels

ENV = 'BPNAS_MM_CPU_KERNELS'
NAMES = ('cpu-kernels', 'torch')
MIN_CLIP = 1e-8  #: a learned clip must stay positive

_state = dict(name=None, tensor_clips=False)


def select() -> str:
    """The backend this process would choose now (no state changes)."""
    if os.environ.get(ENV, '1') == '0':
        return 'torch'
    return 'cpu-kernels' if cpu_kernels.available() else 'torch'


def name() -> str:
    """The backend in use (chosen, and logged, on the first call)."""
    if _state['name'] is None:
        _state['name'] = select()
        if _state['name'] == 'cpu-kernels':
            why = (f'one-pass C kernels for contiguous float32 CPU tensors, torch ops for '
                   f'the rest; {ENV}=0 turns them off')
        elif os.environ.get(ENV, '1') == '0':
            why = f'{ENV}=0'
        else:
            why = f'the C kernels did not build: {cpu_kernels.build_error()}'
        print_log(f'bpnas_mm quantizer backend: {_state["name"]} ({why})', logger='current')
    return _state['name']


@contextlib.contextmanager
def use(backend: str) -> Iterator[None]:
    """Run a block with ``backend`` (one of :data:`NAMES`)."""
    if backend not in NAMES:
        raise ValueError(f'backend must be one of {NAMES}, got {backend!r}')
    if backend == 'cpu-kernels' and not cpu_kernels.available():
        raise RuntimeError(f'the C kernels are not available: {cpu_kernels.build_error()}')
    before = _state['name']
    _state['name'] = backend
    try:
        yield
    finally:
        _state['name'] = before


def kernels_apply(*tensors: torch.Tensor) -> bool:
    """True when the C kernels serve these tensors (contiguous float32 on CPU)."""
    return (name() == 'cpu-kernels'
            and all(t.device.type == 'cpu' and t.dtype == torch.float32 and t.is_contiguous()
                    for t in tensors))


@contextlib.contextmanager
def tensor_clips() -> Iterator[None]:
    """Clips as 0-d tensors on CPU too: the CUDA form of the arithmetic, where a
    test can run it."""
    before = _state['tensor_clips']
    _state['tensor_clips'] = True
    try:
        yield
    finally:
        _state['tensor_clips'] = before


def clip_value(alpha: torch.Tensor) -> Union[float, torch.Tensor]:
    """``max(alpha, MIN_CLIP)`` as the arithmetic takes it: a float on CPU, a
    detached 0-d tensor elsewhere (no host synchronisation)."""
    if alpha.device.type == 'cpu' and not _state['tensor_clips']:
        return max(float(alpha), MIN_CLIP)
    return alpha.detach().clamp(min=MIN_CLIP)
