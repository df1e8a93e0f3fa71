"""mmengine checkpoints save and resume under torch >= 2.6 (weights_only loads)."""
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn
from torch.utils.data import Dataset

import bpnas_mm  # noqa: F401  (allow-lists the types)


class ToyData(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return dict(inputs=torch.randn(4, generator=g), target=torch.tensor(float(i % 2)))


class ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, inputs, target=None, mode='tensor'):
        out = self.fc(torch.stack(inputs) if isinstance(inputs, list) else inputs).squeeze(-1)
        if mode == 'loss':
            t = torch.stack(target) if isinstance(target, list) else target
            return dict(loss=((out - t) ** 2).mean())
        return out


def _runner(work_dir, max_iters, resume=False):
    return Runner(
        model=ToyModel(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=2, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=2, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        resume=resume, default_scope='mmengine', randomness=dict(seed=0))


def test_safe_load_of_runner_checkpoint_and_resume(tmp_path):
    assert torch.load.__module__.startswith('torch')  # nothing monkey-patched
    _runner(tmp_path, 4).train()
    ckpt = tmp_path / 'iter_4.pth'
    # the strict default loader reads it: only the allow-listed types are needed
    data = torch.load(ckpt, map_location='cpu', weights_only=True)
    assert 'message_hub' in data and data['meta']['iter'] == 4
    runner = _runner(tmp_path, 6, resume=True)
    runner.train()
    assert runner.iter == 6
    assert runner.message_hub.get_info('iter') is not None


class Unlisted:
    """A type nobody allow-listed."""


def test_unlisted_globals_still_rejected(tmp_path):
    path = tmp_path / 'unlisted.pth'
    torch.save({'x': Unlisted()}, path)
    with pytest.raises(Exception, match='Unsupported global'):
        torch.load(path, weights_only=True)


def test_getattr_is_limited_to_history_buffer_statistics():
    import pickle

    from mmengine.logging.history_buffer import HistoryBuffer

    from bpnas_mm.utils.checkpoint_safety import history_buffer_getattr
    assert history_buffer_getattr(HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        history_buffer_getattr(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError, match='refusing getattr'):
        history_buffer_getattr(torch, 'load')
