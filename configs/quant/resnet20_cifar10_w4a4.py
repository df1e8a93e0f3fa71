# Uniform W4A4 ResNet20 (first conv and classifier fixed at 8 bit).
# Every quantized layer takes its bits from `quant`; a mixed-precision file
# (`model.mixed_precision=...`) overrides them per layer.
_base_ = ['../resnet20_cifar10_float.py']

model = dict(
    _delete_=True,
    type='bpnas_mm.QuantModel',
    architecture={{_base_.model}},
    quant=dict(
        w_bits=4, a_bits=4,
        include=['*'],
        fixed=[dict(layers=['backbone.conv1', 'head.fc'], w_bits=8, a_bits=8)],
    ),
    # one block = one BasicBlock (the paper's block-wise search)
    grouping=[r'(backbone\.layer\d\.\d+)\.'],
    bops=dict(input_shape=(3, 32, 32), include_fixed=False),
)
