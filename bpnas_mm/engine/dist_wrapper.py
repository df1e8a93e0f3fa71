"""A distributed wrapper for BPNAS: same weights everywhere, steps by the model."""
import torch.distributed as dist
from torch import nn

from ..registry import MODEL_WRAPPERS


@MODEL_WRAPPERS.register_module()
class BPNASDistributedWrapper(nn.Module):
    """Broadcast rank 0's parameters and buffers, then delegate every step.

    :class:`bpnas_mm.algorithms.BPNAS` averages gradients across ranks itself
    (two optimizers, frozen parts and sampled paths do not suit DDP's reducer),
    so this wrapper only has to start every rank from the same state. Use with
    ``model_wrapper_cfg = dict(type='bpnas_mm.BPNASDistributedWrapper')``.
    """

    def __init__(self, module: nn.Module, **kwargs):
        super().__init__()
        self.module = module
        if dist.is_available() and dist.is_initialized():
            for t in list(module.parameters()) + list(module.buffers()):
                dist.broadcast(t.data, src=0)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)

    def val_step(self, data):
        return self.module.val_step(data)

    def test_step(self, data):
        return self.module.test_step(data)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)
