"""ResNet20 for CIFAR: option-A shapes, weight counts, checkpoint conversion."""
import os

import pytest
import torch

from bpnas_mm.models import ResNetCIFAR
from bpnas_mm.models.convert import convert_resnet_cifar

SHARED_WEIGHTS = os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'weights',
                              'resnet20-12fca82f.th')


def test_resnet20_shapes_and_option_a_weight_count():
    net = ResNetCIFAR(depth=20, out_indices=(0, 1, 2))
    outs = net(torch.zeros(2, 3, 32, 32))
    assert [tuple(o.shape) for o in outs] == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    conv_weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    # 432 (stem) + 3*4608 + 13824 + 2*18432 + 55296 + 2*73728 (paper Table 4)
    assert conv_weights == 432 + 3 * 4608 + 13824 + 2 * 18432 + 55296 + 2 * 73728
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    assert n_convs == 19  # no shortcut convs in option A


def test_bad_depth_rejected():
    with pytest.raises(ValueError, match='depth must be 6n \\+ 2'):
        ResNetCIFAR(depth=21)
    with pytest.raises(ValueError, match='out_indices'):
        ResNetCIFAR(out_indices=(3,))


def test_converter_maps_every_key():
    src = {'module.' + k: v for k, v in ResNetCIFAR(depth=20).state_dict().items()
           if not k.endswith('num_batches_tracked')}
    src['module.linear.weight'] = torch.zeros(10, 64)
    src['module.linear.bias'] = torch.zeros(10)
    out = convert_resnet_cifar(src)
    assert 'head.fc.weight' in out and 'backbone.layer3.2.bn2.num_batches_tracked' in out
    backbone = {k[len('backbone.'):]: v for k, v in out.items() if k.startswith('backbone.')}
    ResNetCIFAR(depth=20).load_state_dict(backbone, strict=True)
    with pytest.raises(KeyError, match='unexpected key'):
        convert_resnet_cifar({'module.fc.weight': torch.zeros(1)})


@pytest.mark.skipif(not os.path.isfile(SHARED_WEIGHTS), reason='../shared/weights not present')
def test_converter_on_public_checkpoint():
    ckpt = torch.load(SHARED_WEIGHTS, map_location='cpu', weights_only=True)
    out = convert_resnet_cifar(ckpt['state_dict'])
    backbone = {k[len('backbone.'):]: v for k, v in out.items() if k.startswith('backbone.')}
    ResNetCIFAR(depth=20).load_state_dict(backbone, strict=True)
    assert out['head.fc.weight'].shape == (10, 64)
