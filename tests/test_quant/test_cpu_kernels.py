"""The one-pass CPU kernels against the torch ops and float64 closed forms."""
import os
import sys

import pytest
import torch

from bpnas_mm.quant import backend, cpu_kernels
from bpnas_mm.quant.functional import num_steps, quantize_values, ste_grads

pytestmark = pytest.mark.skipif(not cpu_kernels.available(),
                                reason='no C compiler: the kernels are not built')


def sample(n=50_000, a=1.3, seed=0):
    """Random values plus the edge cases: the clip bounds, 0, and rounding ties."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g) * a
    edges = torch.tensor([a, -a, 0.0, -0.0, 2 * a, -2 * a, a / 7 * 0.5, a / 7 * 1.5,
                          -a / 7 * 2.5, a * (1 + 1e-7), -a * (1 + 1e-7)])
    return torch.cat([edges, x]), torch.randn(n + len(edges), generator=g)


@pytest.mark.parametrize('signed', [True, False])
@pytest.mark.parametrize('bits', [2, 3, 4, 8])
def test_quantize_is_identical_to_the_torch_ops(bits, signed):
    x, _ = sample()
    levels = num_steps(bits, signed)
    with backend.use('cpu-kernels'):
        fast = quantize_values(x, 1.3, levels, signed)
    with backend.use('torch'):
        assert not backend.kernels_apply(x)
        assert torch.equal(fast, quantize_values(x, 1.3, levels, signed))


@pytest.mark.parametrize('signed', [True, False])
def test_ste_backward_matches_float64_closed_forms(signed):
    x, g = sample()
    a, levels = 1.3, num_steps(3, signed)
    q = quantize_values(x, a, levels, signed)
    lo = -a if signed else 0.0
    inside = (x >= lo) & (x <= a)
    grad_x, grad_alpha, dot = ste_grads(g, x, a, levels, signed, need_gate=True)
    assert torch.equal(grad_x, torch.where(inside, g, torch.zeros_like(g)))
    g64, x64, q64 = g.double(), x.double(), q.double()
    want_alpha = ((g64 * (q64 - x64))[inside].sum() / a + g64[x > a].sum()
                  - (g64[x < lo].sum() if signed else 0.0))
    assert float(grad_alpha) == pytest.approx(float(want_alpha), rel=1e-9, abs=1e-9)
    assert float(dot) == pytest.approx(float((g64 * q64).sum()), rel=1e-9, abs=1e-9)


def test_ste_backward_agrees_with_the_torch_ops():
    x, g = sample(seed=1)
    with backend.use('cpu-kernels'):
        fast = ste_grads(g, x, 0.9, 7, True, need_gate=True)
    with backend.use('torch'):
        slow = ste_grads(g, x, 0.9, 7, True, need_gate=True)
    assert torch.equal(fast[0], slow[0])
    assert float(fast[1]) == pytest.approx(float(slow[1]), rel=1e-4)
    assert float(fast[2]) == pytest.approx(float(slow[2]), rel=1e-4)


def test_only_what_is_asked_is_computed_and_grad_x_can_reuse_the_gradient():
    x, g = sample()
    grad = g.clone()
    grad_x, grad_alpha, dot = ste_grads(grad, x, 1.3, 3, True, need_x=True, need_alpha=False,
                                        need_gate=False, grad_inplace=True)
    assert grad_alpha is None and dot is None
    assert grad_x.data_ptr() == grad.data_ptr()
    assert torch.equal(grad_x, torch.where(x.abs() <= 1.3, g, torch.zeros_like(g)))
    grad_x, grad_alpha, dot = ste_grads(g, x, 1.3, 3, True, need_x=False, need_alpha=True,
                                        need_gate=True)
    assert grad_x is None and grad_alpha is not None and dot is not None


@pytest.mark.parametrize('threads_kind', ['openmp', 'pool'])
def test_chunks_on_several_threads_give_the_single_thread_result(threads_kind, monkeypatch):
    monkeypatch.setenv('BPNAS_MM_KERNEL_THREADS', threads_kind)
    if threads_kind == 'openmp' and cpu_kernels.openmp_team() is None:
        pytest.skip('torch does not run on a loadable OpenMP runtime here')
    x, g = sample(n=5 * cpu_kernels.MIN_CHUNK + 3)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 3):
            torch.set_num_threads(threads)
            assert len(cpu_kernels._chunks(x.numel())) == threads
            results.append((quantize_values(x, 1.1, 7, True),
                            *ste_grads(g, x, 1.1, 7, True, need_gate=True)))
    finally:
        torch.set_num_threads(before)
    (q1, gx1, ga1, d1), (q3, gx3, ga3, d3) = results
    assert torch.equal(q1, q3) and torch.equal(gx1, gx3)
    assert float(ga1) == pytest.approx(float(ga3), rel=1e-12)
    assert float(d1) == pytest.approx(float(d3), rel=1e-12)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='/proc/self/maps')
def test_kernels_run_on_the_openmp_runtime_torch_uses():
    if 'parallel backend: OpenMP' not in torch.__config__.parallel_info():
        pytest.skip('torch is not built with OpenMP here')
    team = cpu_kernels.openmp_team()
    assert team is not None and all(isinstance(a, int) and a > 0 for a in team)


def test_scratch_buffer_is_reused_and_grows():
    a = cpu_kernels.scratch_like(torch.empty(2, 3))
    b = cpu_kernels.scratch_like(torch.empty(3, 2))
    assert a.shape == (2, 3) and b.shape == (3, 2) and a.data_ptr() == b.data_ptr()
    big = cpu_kernels.scratch_like(torch.empty(1000))
    assert big.numel() == 1000
    assert cpu_kernels.scratch_like(torch.empty(4)).data_ptr() == big.data_ptr()


def test_other_tensors_take_the_torch_ops():
    x = torch.randn(8, 8)
    with backend.use('cpu-kernels'):
        assert backend.kernels_apply(x)
        assert not backend.kernels_apply(x.t())  # not contiguous
        assert not backend.kernels_apply(x.double())
        assert not backend.kernels_apply(x.half())


def test_without_a_compiler_the_torch_ops_serve(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu_kernels, '_state', dict(lib=None, tried=False, error=None,
                                                    pool=None, pool_size=0))
    monkeypatch.setenv('CC', 'false')  # a compiler that fails
    monkeypatch.setenv('BPNAS_MM_CACHE', str(tmp_path))
    x = torch.randn(100)
    assert not cpu_kernels.available() and backend.select() == 'torch'
    assert cpu_kernels.build_error()  # what the log line says
    with backend.use(backend.select()):
        q = quantize_values(x, 1.0, 7, True)
    assert torch.allclose(q, (x.clamp(-1, 1) * 7).round() / 7)
    kernels = tmp_path / 'kernels'
    assert not kernels.exists() or not os.listdir(kernels)  # nothing half-written left


def test_library_is_built_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv('BPNAS_MM_CACHE', str(tmp_path))
    path = cpu_kernels._build(cpu_kernels.SOURCE)
    assert os.path.dirname(path) == str(tmp_path / 'kernels') and os.path.isfile(path)
    assert cpu_kernels._build(cpu_kernels.SOURCE) == path  # cached
    assert os.listdir(tmp_path / 'kernels') == [os.path.basename(path)]



def test_a_forked_child_gets_its_own_threads(monkeypatch):
    """A forked child inherits the pool object but none of its threads: a new pool
    is made when the process id changes (simulated here: a real fork of a process
    that has run OpenMP regions can hang in libgomp, whatever this module does)."""
    monkeypatch.setenv('BPNAS_MM_KERNEL_THREADS', 'pool')
    x, _ = sample(n=4 * cpu_kernels.MIN_CHUNK)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        want = quantize_values(x, 1.0, 7, True)
        parent_pool = cpu_kernels._state['pool']
        monkeypatch.setattr(cpu_kernels.os, 'getpid', lambda: -1)
        assert torch.equal(quantize_values(x, 1.0, 7, True), want)
        assert cpu_kernels._state['pool'] is not parent_pool
        assert cpu_kernels._state['pid'] == -1
    finally:
        torch.set_num_threads(before)



@pytest.mark.parametrize('signed', [True, False])
def test_a_clip_on_the_device_gives_what_a_python_clip_gives(signed):
    """Off CPU the clip stays a tensor (no host sync): same values and gradients."""
    x, g = sample(seed=2)
    a, levels = 1.3, num_steps(3, signed)
    a_tensor = torch.tensor(a)
    with backend.use('torch'):
        q = quantize_values(x, a, levels, signed)
        q_t = quantize_values(x, a_tensor, levels, signed)
        ref = ste_grads(g, x, a, levels, signed, need_gate=True)
        on_device = ste_grads(g, x, a_tensor, levels, signed, need_gate=True)
    assert torch.allclose(q_t, q, rtol=0, atol=1e-6)  # float32 vs float64 division of a
    assert torch.equal(on_device[0], ref[0])
    assert float(on_device[1]) == pytest.approx(float(ref[1]), rel=1e-5)
    assert float(on_device[2]) == pytest.approx(float(ref[2]), rel=1e-5)
    assert backend.clip_value(torch.tensor(-1.0)) == backend.MIN_CLIP  # a clip stays positive
