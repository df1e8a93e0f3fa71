"""One-pass CPU kernels for the quantizer's hot loops (forward ``Q(x)``, STE backward).

With torch ops, ``Q(x)`` is four passes over the activation (clamp, scale,
round, rescale) and the STE backward of the clip another five to seven (mask,
error, dot, masked sums); on CPU, at detection sizes (an FPN-P2 map is 69 MB),
these memory passes and the page faults of their temporaries cost as much as
the convolutions. ``csrc/quant_kernels.c`` does each in one pass, with the same
float32 operations as the torch ops (identical ``Q(x)`` values) and the sums in
double.

The C file is compiled on first use with the system C compiler (``cc -O3``,
about a second) into ``~/.cache/bpnas_mm/kernels`` (``BPNAS_MM_CACHE`` moves
it) and called through :mod:`ctypes`. A tensor is cut into
``torch.get_num_threads()`` chunks, run on the OpenMP thread team of the
runtime torch itself uses (its ``GOMP_parallel``, found among the loaded
libraries), so the kernels share torch's threads instead of competing with
them; where torch does not use OpenMP, or with ``BPNAS_MM_KERNEL_THREADS=pool``,
on a Python thread pool (ctypes releases the GIL; its threads compete with
OpenMP workers still spinning after a convolution, see the README's
measurements). Nothing here is required:
without a compiler, for CUDA, non-float32 or non-contiguous tensors, or with
``BPNAS_MM_CPU_KERNELS=0``, the callers use torch ops (the choice is
:mod:`~bpnas_mm.quant.backend`'s).
"""
import ctypes
import hashlib
import os
import os.path as osp
import platform
import re
import subprocess
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Tuple

import torch

SOURCE = osp.join(osp.dirname(__file__), 'csrc', 'quant_kernels.c')
MIN_CHUNK = 1 << 16  #: elements; smaller tensors run on the calling thread
_lock = threading.Lock()
_state = dict(lib=None, tried=False, error=None, pool=None, pool_size=0)
_scratch = threading.local()


def _cache_dir() -> str:
    root = os.environ.get('BPNAS_MM_CACHE', osp.join(osp.expanduser('~'), '.cache', 'bpnas_mm'))
    return osp.join(root, 'kernels')


def _build(src: str) -> str:
    """Compile ``src`` into a shared library (cached by source, machine and compiler)."""
    cc = os.environ.get('CC', 'cc')
    flags = ['-O3', '-march=native', '-fopenmp-simd', '-fno-fast-math', '-ffp-contract=off',
             '-fPIC', '-shared']
    code = open(src, 'rb').read()
    key = hashlib.sha1(code + ' '.join([cc, *flags, platform.machine(),
                                        platform.node()]).encode()).hexdigest()[:16]
    out = osp.join(_cache_dir(), f'quant_kernels_{key}.so')
    if osp.isfile(out):
        return out
    os.makedirs(osp.dirname(out), exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix='.so', dir=osp.dirname(out))  # no half-written library
    os.close(fd)
    try:
        subprocess.run([cc, *flags, src, '-o', tmp, '-lm'], check=True, capture_output=True,
                       timeout=120)
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return out


def _load():
    with _lock:
        if not _state['tried']:
            _state['tried'] = True
            try:
                lib = ctypes.CDLL(_build(SOURCE))
                f32, i64, ptr = ctypes.c_float, ctypes.c_int64, ctypes.c_void_p
                lib.bp_quantize.argtypes = [ptr, ptr, i64, f32, f32, f32, f32]
                lib.bp_quantize.restype = None
                lib.bp_ste_backward.argtypes = [ptr, ptr, ptr, i64, f32, f32, f32, f32,
                                                ctypes.c_int, ptr]
                lib.bp_ste_backward.restype = None
                lib.bp_quantize_team.argtypes = [ptr, ptr, ptr, ctypes.c_uint, ptr, ptr, i64,
                                                 f32, f32, f32, f32]
                lib.bp_quantize_team.restype = None
                lib.bp_ste_backward_team.argtypes = [ptr, ptr, ptr, ctypes.c_uint, ptr, ptr,
                                                     ptr, i64, f32, f32, f32, f32,
                                                     ctypes.c_int, ptr]
                lib.bp_ste_backward_team.restype = None
                _state['lib'] = lib
            except (OSError, subprocess.SubprocessError) as e:  # no compiler: torch ops
                _state['error'] = e
        return _state['lib']


def available() -> bool:
    """Whether the kernels are compiled and loaded (whether they are used is
    :mod:`~bpnas_mm.quant.backend`'s choice)."""
    return _load() is not None


def build_error() -> str:
    """Why the kernels are not available ('' when they are)."""
    _load()
    error = _state.get('error')
    return '' if error is None else f'{type(error).__name__}: {error}'.splitlines()[0][:200]


def openmp_team() -> Optional[Tuple[int, int, int]]:
    """Addresses of ``GOMP_parallel``, ``omp_get_thread_num`` and
    ``omp_get_num_threads`` of the OpenMP runtime torch uses, or None (torch
    not on OpenMP, no such library loaded, or ``BPNAS_MM_KERNEL_THREADS=pool``)."""
    if os.environ.get('BPNAS_MM_KERNEL_THREADS', 'openmp') == 'pool':
        return None
    if 'team' not in _state:
        _state['team'] = _find_openmp_team()
    return _state['team']


def _find_openmp_team():
    if 'parallel backend: OpenMP' not in torch.__config__.parallel_info():
        return None
    try:
        with open('/proc/self/maps') as f:
            libs = {line.split()[-1] for line in f
                    if re.search(r'/lib(gomp|iomp5|omp)[^/]*\.so[^/]*$', line.strip())}
    except OSError:
        return None
    torch_dir = osp.dirname(osp.abspath(torch.__file__))
    own = sorted(p for p in libs if osp.abspath(p).startswith(torch_dir))
    candidates = own or (sorted(libs) if len(libs) == 1 else [])
    for path in candidates:
        try:
            rt = ctypes.CDLL(path)  # already loaded: the same instance, its threads
            return tuple(ctypes.cast(getattr(rt, name), ctypes.c_void_p).value
                         for name in ('GOMP_parallel', 'omp_get_thread_num',
                                      'omp_get_num_threads'))
        except (OSError, AttributeError):
            continue
    return None


def _pool(workers: int) -> ThreadPoolExecutor:
    """The worker threads (a new pool when the size changes, or in a forked child,
    which inherits the pool but none of its threads)."""
    if _state['pool_size'] != workers or _state.get('pid') != os.getpid():
        if _state['pool'] is not None and _state.get('pid') == os.getpid():
            _state['pool'].shutdown(wait=True)
        _state['pid'] = os.getpid()
        _state['pool'] = ThreadPoolExecutor(workers, thread_name_prefix='bpnas_mm_kernel')
        _state['pool_size'] = workers
    return _state['pool']


def _chunks(n: int):
    """``(start, count)`` per thread; none for an empty tensor."""
    if n == 0:
        return []
    parts = max(1, min(torch.get_num_threads(), n // MIN_CHUNK))
    step = -(-n // parts)
    return [(i, min(step, n - i)) for i in range(0, n, step)]


def _run(calls):
    """Run ``calls`` (zero-argument functions), the first on this thread."""
    if len(calls) <= 1:
        for call in calls:
            call()
        return
    futures = [_pool(len(calls) - 1).submit(c) for c in calls[1:]]
    calls[0]()
    for f in futures:
        f.result()


def _scales(a: float, levels: int, signed: bool):
    lo = -a if signed else 0.0
    # the float32 scalars torch uses for ``mul_(levels / a)`` and ``mul_(a / levels)``
    return lo, a, levels / a, a / levels


def scratch_like(x: torch.Tensor) -> torch.Tensor:
    """A tensor shaped like ``x`` in a buffer reused from call to call (per thread).

    For a transient ``Q(x)`` that one op reads and drops: a fresh 69 MB tensor
    costs ~17,000 page faults on every use (glibc returns such blocks to the
    kernel when freed). Its contents are undefined; the next call overwrites it.
    """
    buf = getattr(_scratch, 'buf', None)
    if buf is None or buf.numel() < x.numel():
        _scratch.buf = buf = torch.empty(x.numel(), dtype=x.dtype)
    return buf[:x.numel()].view(x.shape)


def quantize(x: torch.Tensor, a: float, levels: int, signed: bool,
             out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """``Q(x)`` into ``out`` or a new tensor (``x`` contiguous float32 on CPU)."""
    lib = _load()
    out = torch.empty_like(x) if out is None else out
    lo, hi, k_in, k_out = _scales(a, levels, signed)
    xp, op = x.data_ptr(), out.data_ptr()
    chunks = _chunks(x.numel())
    team = openmp_team() if len(chunks) > 1 else None
    if team is not None:
        lib.bp_quantize_team(*team, len(chunks), xp, op, x.numel(), lo, hi, k_in, k_out)
        return out
    _run([lambda s=s, c=c: lib.bp_quantize(xp + 4 * s, op + 4 * s, c, lo, hi, k_in, k_out)
          for s, c in chunks])
    return out


def ste_backward(grad: torch.Tensor, x: torch.Tensor, a: float, levels: int, signed: bool,
                 need_x: bool, need_alpha: bool, need_gate: bool,
                 inplace: bool = False) -> Tuple[Optional[torch.Tensor], Optional[Tuple],
                                                 Optional[float]]:
    """One pass of ``Q``'s STE backward given ``grad = dL/dQ``.

    Returns ``(grad_x or None, (inside, above, below) or None, <grad, Q> or None)``:
    ``grad_x`` is ``grad`` on the clip range and 0 outside (written into
    ``grad`` when ``inplace``); ``inside`` is the sum of ``grad * (Q - x)`` on
    the range, ``above``/``below`` the sums of ``grad`` above and below it
    (floats, summed in double).
    """
    lib = _load()
    grad_x = (grad if inplace else torch.empty_like(grad)) if need_x else None
    lo, hi, k_in, k_out = _scales(a, levels, signed)
    want = int(need_x) | (2 * int(need_alpha)) | (4 * int(need_gate))
    chunks = _chunks(x.numel())
    sums = (ctypes.c_double * (4 * len(chunks)))()
    base = ctypes.addressof(sums)
    gp, xp = grad.data_ptr(), x.data_ptr()
    op = grad_x.data_ptr() if grad_x is not None else 0
    team = openmp_team() if len(chunks) > 1 else None
    if team is not None:
        lib.bp_ste_backward_team(*team, len(chunks), gp, xp, op or None, x.numel(), lo, hi,
                                 k_in, k_out, want, base)
    else:
        _run([lambda k=k, s=s, c=c: lib.bp_ste_backward(
            gp + 4 * s, xp + 4 * s, (op + 4 * s) if op else None, c, lo, hi, k_in, k_out,
            want, base + 32 * k) for k, (s, c) in enumerate(chunks)])
    total = [sum(sums[4 * k + j] for k in range(len(chunks))) for j in range(4)]
    alpha_parts = tuple(total[:3]) if need_alpha else None
    return grad_x, alpha_parts, (total[3] if need_gate else None)
