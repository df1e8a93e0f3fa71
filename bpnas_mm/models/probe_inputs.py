"""Dummy inputs for the shape probe of mmpretrain classifiers and mmdet detectors."""
from typing import Callable, Sequence

import torch
from torch import nn


def _is_detector(model: nn.Module) -> bool:
    try:
        from mmdet.models.detectors import BaseDetector
    except ImportError:  # pragma: no cover - mmdet is a dependency
        return False
    return isinstance(model, BaseDetector)


def make_probe_forward(input_shape: Sequence[int], batch_size: int = 1
                       ) -> Callable[[nn.Module], object]:
    """A ``forward(model)`` that runs one pass at ``input_shape`` = (C, H, W).

    Detectors get ``DetDataSample`` metadata for an image of that size (so the
    RPN proposes and the RoI head runs); other models run ``mode='tensor'``.
    The tensor is random normal: it only has to have the right shape.
    """
    if len(input_shape) != 3 or not all(isinstance(s, int) and s > 0 for s in input_shape):
        raise ValueError(f'bops.input_shape must be (C, H, W) positive ints, got {input_shape!r}')
    c, h, w = input_shape

    def forward(model: nn.Module):
        param = next(model.parameters())
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(batch_size, c, h, w, generator=gen).to(param.device)
        if _is_detector(model):
            from mmdet.structures import DetDataSample
            samples = []
            for _ in range(batch_size):
                s = DetDataSample()
                s.set_metainfo(dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                                    batch_input_shape=(h, w), scale_factor=(1.0, 1.0)))
                samples.append(s)
            return model(x, samples, mode='tensor')
        return model(x, mode='tensor')

    return forward
