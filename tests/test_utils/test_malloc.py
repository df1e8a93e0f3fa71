"""keep_freed_memory: a freed large tensor's pages are reused, not re-faulted."""
import os
import subprocess
import sys

import pytest

# A child process: repeat a 'step' that allocates four 64 MB tensors and frees
# them, and print the fewest minor page faults of steps 4-6 (steady state:
# the heap has grown to the step's peak in the first steps).
CHILD = r'''
import resource, torch
from bpnas_mm.utils import keep_freed_memory
applied = keep_freed_memory()
assert keep_freed_memory() == applied  # idempotent
def step_faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    ts = [torch.ones(16 * 2 ** 20) for _ in range(3)]
    ts.append(ts[0] + ts[1])
    del ts
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults = [step_faults() for _ in range(6)]
print(int(applied), min(faults[3:]))
'''


def _run(env_value):
    env = dict(os.environ)
    env.pop('BPNAS_MM_KEEP_FREED_MEMORY', None)
    if env_value is not None:
        env['BPNAS_MM_KEEP_FREED_MEMORY'] = env_value
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, '-c', CHILD], env=env, cwd=root, check=True,
                         capture_output=True, text=True).stdout.split()
    return bool(int(out[0])), int(out[1])


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='glibc malloc settings')
def test_freed_memory_is_reused_without_page_faults():
    applied, faults = _run('1')
    assert applied
    pages = 4 * 64 * 2 ** 20 // 4096  # written by one step
    assert faults < pages // 20, faults  # the heap's pages, reused
    applied_off, faults_off = _run('0')
    assert not applied_off
    assert faults_off > pages // 2, faults_off  # fresh mmaps: one fault per page


def test_on_by_default_only_without_a_gpu(monkeypatch):
    import torch
    from bpnas_mm.utils.malloc import ENV, wanted
    monkeypatch.delenv(ENV, raising=False)
    assert wanted() == (not torch.cuda.is_available())
    monkeypatch.setenv(ENV, '0')
    assert not wanted()
    monkeypatch.setenv(ENV, '1')
    assert wanted()
