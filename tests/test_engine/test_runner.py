"""SafeCheckpointRunner: whole checkpoints, an explicit resume choice."""
import os
import subprocess
import sys
import time

import pytest
import torch

from bpnas_mm.engine.runner import choose_resume_checkpoint

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))

# a runner with a 160 kB checkpoint saves once, then again with the disk "full" half way
CHILD = """
import resource, signal, sys, torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import DataLoader, TensorDataset
from bpnas_mm.engine.runner import SafeCheckpointRunner


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(200, 200)

    def forward(self, inputs=None, data_samples=None, mode='tensor'):
        return self.fc(inputs)


work, kind = sys.argv[1], sys.argv[2]
cls = SafeCheckpointRunner if kind == 'safe' else Runner
runner = cls(model=Toy(), work_dir=work, experiment_name='toy',
             train_dataloader=DataLoader(TensorDataset(torch.zeros(2, 200)), batch_size=1),
             train_cfg=dict(by_epoch=True, max_epochs=1),
             optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)))
save = dict(save_optimizer=False, save_param_scheduler=False)
runner.save_checkpoint(work, 'epoch_1.pth', **save)
with torch.no_grad():
    runner.model.fc.weight.add_(1.0)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))
try:
    runner.save_checkpoint(work, 'epoch_1.pth', **save)
except OSError as e:
    print('save failed:', e)
"""


def _save_with_full_disk(work, kind):
    out = subprocess.run([sys.executable, '-c', CHILD, str(work), kind], cwd=ROOT,
                         capture_output=True, text=True)
    assert 'save failed' in out.stdout, out.stdout + out.stderr[-2000:]


def test_checkpoint_appears_whole_or_not_at_all(tmp_path):
    """A save that fails half way leaves the previous checkpoint as it was."""
    _save_with_full_disk(tmp_path, 'safe')
    ckpt = torch.load(tmp_path / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert float(ckpt['state_dict']['fc.weight'].abs().max()) < 1.0  # the first save's
    assert not [p for p in os.listdir(tmp_path) if p.endswith('.tmp')]


def test_mmengine_runner_leaves_a_truncated_checkpoint(tmp_path):
    """Why the runner exists: mmengine's own writes in place."""
    _save_with_full_disk(tmp_path, 'plain')
    assert os.path.getsize(tmp_path / 'epoch_1.pth') <= 60_000
    with pytest.raises(Exception):
        torch.load(tmp_path / 'epoch_1.pth', map_location='cpu', weights_only=False)


def test_leftovers_of_a_killed_save_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f'.epoch_2.pth.{dead}.tmp'
    stale.write_bytes(b'half a checkpoint')
    _save_with_full_disk(tmp_path, 'safe')
    assert not stale.exists()


def test_resume_takes_the_newest_checkpoint_and_says_so(tmp_path):
    assert choose_resume_checkpoint(str(tmp_path)) == (None, [])
    for n in (1, 2):
        (tmp_path / f'epoch_{n}.pth').write_bytes(b'x')
        time.sleep(0.02)
    # killed between saving epoch_2.pth and recording it
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_1.pth'))
    chosen, warnings = choose_resume_checkpoint(str(tmp_path))
    assert chosen == str(tmp_path / 'epoch_2.pth')
    assert 'epoch_2.pth is newer' in warnings[0]
    os.remove(tmp_path / 'last_checkpoint')
    chosen, warnings = choose_resume_checkpoint(str(tmp_path))
    assert chosen == str(tmp_path / 'epoch_2.pth') and 'no last_checkpoint' in warnings[0]
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'epoch_2.pth'))
    assert choose_resume_checkpoint(str(tmp_path)) == (str(tmp_path / 'epoch_2.pth'), [])


DIST_CHILD = """
import os, sys, torch, torch.distributed as dist
from mmengine.model import BaseModel
from torch.utils.data import DataLoader, TensorDataset
from bpnas_mm.engine.runner import SafeCheckpointRunner


class Toy(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 4)

    def forward(self, inputs=None, data_samples=None, mode='tensor'):
        return self.fc(inputs)


work = sys.argv[1]
dist.init_process_group('gloo')
runner = SafeCheckpointRunner(
    model=Toy(), work_dir=work, experiment_name='toy',
    train_dataloader=DataLoader(TensorDataset(torch.zeros(2, 4)), batch_size=1),
    train_cfg=dict(by_epoch=True, max_epochs=1),
    optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)))
runner.save_checkpoint(work, 'epoch_1.pth', save_optimizer=False, save_param_scheduler=False)
dist.barrier()
open(os.path.join(sys.argv[2], f'rank{dist.get_rank()}.saved'), 'w').close()
dist.destroy_process_group()
"""


def test_every_rank_calls_save_and_rank_0_writes(tmp_path):
    """As mmengine's ``save_checkpoint`` (``master_only``): with two ranks, rank 1's
    call must neither write nor fail on rank 0's temporary file."""
    script = tmp_path / 'child.py'
    script.write_text(DIST_CHILD)
    work = tmp_path / 'work'
    out = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2',
                          f'--master_port={29600 + os.getpid() % 300}', str(script), str(work),
                          str(tmp_path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    # each rank leaves a mark (printed lines of two ranks may interleave)
    assert sorted(p.name for p in tmp_path.glob('*.saved')) == ['rank0.saved', 'rank1.saved']
    torch.load(work / 'epoch_1.pth', map_location='cpu', weights_only=False)
    assert not [p for p in os.listdir(work) if p.endswith('.tmp')]
