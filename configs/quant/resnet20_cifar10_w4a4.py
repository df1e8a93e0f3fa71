# Uniform W4A4 ResNet20 (first conv and classifier fixed at 8 bit).
# Every quantized layer takes its bits from `quant`; a mixed-precision file
# (`model.mixed_precision=...`) overrides them per layer.
_base_ = ['../resnet20_cifar10_float.py', '../_base_/quant/classifier.py']

model = dict(
    _delete_=True,
    type='bpnas_mm.QuantModel',
    architecture={{_base_.model}},
    quant={{_base_.cls_quant}},  # W4A4, stem and classifier at 8 bit
    grouping={{_base_.cls_grouping}},  # one block = one BasicBlock
    bops=dict(input_shape=(3, 32, 32), include_fixed=False),
)
