import pytest
import torch
from torch import nn

from bpnas_mm.models import ResNetCIFAR


class TinyClassifier(nn.Module):
    """ResNetCIFAR + pooling + fc, without mmpretrain (for pure-torch tests)."""

    def __init__(self, depth=20):
        super().__init__()
        self.backbone = ResNetCIFAR(depth=depth)
        self.head = nn.Module()
        self.head.fc = nn.Linear(64, 10)

    def forward(self, x, data_samples=None, mode='tensor'):
        feat = self.backbone(x)[-1].mean((2, 3))
        return self.head.fc(feat)


#: devices the device-parametrized tests run on (CUDA only where a GPU is present);
#: 'cpu-torch-ops' is the CPU with the one-pass kernels of bpnas_mm.quant.cpu_kernels off
DEVICES = ['cpu', 'cpu-torch-ops'] + (['cuda'] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request, monkeypatch):
    if request.param == 'cpu-torch-ops':
        monkeypatch.setenv('BPNAS_MM_CPU_KERNELS', '0')
        return torch.device('cpu')
    return torch.device(request.param)


@pytest.fixture
def tiny_classifier():
    torch.manual_seed(0)
    return TinyClassifier()
