"""Random 16x16 CIFAR-like batches for the tiny ResNet-8 search config."""
import torch
from mmpretrain.structures import DataSample


def batch(seed, n=4):
    """``n`` random uint8 images with random labels of 10 classes, from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return dict(inputs=[torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8)
                        for _ in range(n)],
                data_samples=[DataSample().set_gt_label(int(i)) for i in
                              torch.randint(0, 10, (n,), generator=g)])
