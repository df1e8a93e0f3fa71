"""Convert public CIFAR ResNet checkpoints to an mmpretrain ``ImageClassifier``.

Source key layout (the widely used ``resnet.py`` of CIFAR ResNets, saved from
``nn.DataParallel``): ``module.conv1.weight``, ``module.layer1.0.bn1.*``, ...,
``module.linear.{weight,bias}``. Target: ``backbone.*`` for
:class:`bpnas_mm.models.ResNetCIFAR` and ``head.fc.*`` for ``LinearClsHead``.
BatchNorm ``num_batches_tracked`` counters the source lacks are added as 0.
"""
from collections import OrderedDict
from typing import Dict

import torch


def convert_resnet_cifar(src: Dict[str, torch.Tensor]) -> 'OrderedDict[str, torch.Tensor]':
    """Map a CIFAR ResNet state dict onto ImageClassifier keys."""
    out = OrderedDict()
    for key, value in src.items():
        key = key[len('module.'):] if key.startswith('module.') else key
        if key.startswith('linear.'):
            new = 'head.fc.' + key[len('linear.'):]
        elif key.startswith(('conv1.', 'bn1.', 'layer')):
            new = 'backbone.' + key
        else:
            raise KeyError(f'unexpected key in the CIFAR ResNet checkpoint: {key!r}')
        out[new] = value
        if new.endswith('.running_var'):
            counter = new[:-len('running_var')] + 'num_batches_tracked'
            if counter not in out:
                out[counter] = torch.tensor(0, dtype=torch.long)
    return out
