"""Training on CPU without re-faulting freed memory (glibc's malloc settings).

PyTorch's CPU tensors come from ``malloc``. glibc serves blocks above its mmap
threshold (at most 32 MB) with a fresh ``mmap`` and gives them back with
``munmap`` when freed, so every such tensor of every training step (a
Faster R-CNN P2 map at 800x1333 is 69 MB, and oneDNN allocates reorder
copies of them) starts as untouched pages, one page fault per 4 KB on first
write (the README's "Measured" table has the cost: ``tools/benchmark/
bench_detection.py`` with and without ``--default-malloc``).

:func:`keep_freed_memory` asks glibc to serve every allocation from its heap
(``M_MMAP_MAX = 0``) and never to return freed heap memory to the system
(``M_TRIM_THRESHOLD = -1``, documented in ``mallopt(3)``): the process keeps
its peak memory after a step, which the next step reuses. This is what the
CUDA caching allocator does for GPU memory. It is process-wide, so it is a
visible switch: ``tools/train.py``, ``tools/test.py`` and
:class:`~bpnas_mm.engine.BPNASSearchLoop` turn it on where no GPU is present
(on a GPU machine the host's tensors are few and it would only keep host
memory), and ``BPNAS_MM_KEEP_FREED_MEMORY=1`` / ``=0`` forces it on / off.
"""
import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1  #: mallopt parameter numbers (malloc.h)
M_MMAP_MAX = -4
ENV = 'BPNAS_MM_KEEP_FREED_MEMORY'

_state = dict(applied=None)


def wanted() -> bool:
    """Whether to keep freed memory: ``BPNAS_MM_KEEP_FREED_MEMORY`` if set (``0``
    or ``1``), else only on machines without a GPU."""
    setting = os.environ.get(ENV)
    if setting is not None:
        return setting != '0'
    import torch
    return not torch.cuda.is_available()


def keep_freed_memory() -> bool:
    """Apply the settings once per process where :func:`wanted`; True if they
    are in effect (False, nothing changed, when not wanted or the C library
    is not glibc)."""
    if _state['applied'] is not None:
        return _state['applied']
    applied = False
    if wanted() and platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc':
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
    _state['applied'] = applied
    return applied
