"""ResNet for CIFAR (He et al. 2016, Sec. 4.2) with option-A shortcuts.

Three stages of ``n`` BasicBlocks (16, 32, 64 channels), depth ``6n + 2``
(20, 32, 44, 56, 110). Option A: a shortcut that changes shape subsamples by
2 and zero-pads channels, so it has no weights; ResNet20 has 0.27M weights, as
the paper's Table 4 counts them. Parameter names follow the widely used
CIFAR ResNet checkpoints (``conv1``, ``bn1``, ``layer1.0.conv1``, ...), which
``tools/model_converters/resnet_cifar_to_mmpretrain.py`` maps onto an
mmpretrain ``ImageClassifier``.
"""
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

from ..registry import MODELS


class PadShortcut(nn.Module):
    """Option-A shortcut: stride-2 subsampling and zero channel padding."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.stride = stride
        self.pad = out_channels - in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        half = self.pad // 2
        return F.pad(x, (0, 0, 0, 0, half, self.pad - half))


class CifarBasicBlock(nn.Module):
    """3x3 conv - BN - ReLU - 3x3 conv - BN, plus shortcut, then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = PadShortcut(in_channels, out_channels, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


@MODELS.register_module()
class ResNetCIFAR(BaseModule):
    """CIFAR ResNet backbone (``type='bpnas_mm.ResNetCIFAR'``).

    Args:
        depth (int): 6n + 2, e.g. 20 or 56.
        in_channels (int): input image channels.
        base_channels (int): channels of the first stage (doubles per stage).
        out_indices (Sequence[int]): stages (0, 1, 2) whose outputs are returned.
    """

    def __init__(self, depth: int = 20, in_channels: int = 3, base_channels: int = 16,
                 out_indices: Sequence[int] = (2,), init_cfg=None):
        if init_cfg is None:
            init_cfg = [dict(type='Kaiming', layer=['Conv2d']),
                        dict(type='Constant', val=1, layer=['_BatchNorm'])]
        super().__init__(init_cfg=init_cfg)
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise ValueError(f'ResNetCIFAR.depth must be 6n + 2 (20, 32, 44, 56, 110), got {depth!r}')
        if not out_indices or any(i not in (0, 1, 2) for i in out_indices):
            raise ValueError(f'ResNetCIFAR.out_indices must be a non-empty subset of (0, 1, 2), '
                             f'got {out_indices!r}')
        self.depth = depth
        self.out_indices = tuple(out_indices)
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, base_channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(base_channels)
        channels = base_channels
        for stage in range(3):
            out_channels = base_channels * 2 ** stage
            blocks = []
            for i in range(n):
                stride = 2 if (stage > 0 and i == 0) else 1
                blocks.append(CifarBasicBlock(channels, out_channels, stride))
                channels = out_channels
            self.add_module(f'layer{stage + 1}', nn.Sequential(*blocks))

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        x = F.relu(self.bn1(self.conv1(x)))
        outs = []
        for stage in range(3):
            x = getattr(self, f'layer{stage + 1}')(x)
            if stage in self.out_indices:
                outs.append(x)
        return tuple(outs)
