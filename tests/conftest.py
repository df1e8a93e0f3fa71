import pytest
import torch
from torch import nn

from bpnas_mm.models import ResNetCIFAR
from bpnas_mm.quant import backend


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
#: 'cpu-torch-ops' is the CPU with the one-pass kernels of bpnas_mm.quant.cpu_kernels off,
#: 'cpu-tensor-clips' the CPU with the clips as tensors, as on CUDA (bpnas_mm.quant.backend)
DEVICES = (['cpu', 'cpu-torch-ops', 'cpu-tensor-clips']
           + (['cuda'] if torch.cuda.is_available() else []))


@pytest.fixture(params=DEVICES)
def device(request):
    if request.param == 'cpu-torch-ops':
        with backend.use('torch'):
            yield torch.device('cpu')
    elif request.param == 'cpu-tensor-clips':
        with backend.tensor_clips():
            yield torch.device('cpu')
    else:
        yield torch.device(request.param)


@pytest.fixture
def tiny_classifier():
    torch.manual_seed(0)
    return TinyClassifier()
