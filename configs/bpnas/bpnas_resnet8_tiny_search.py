# A tiny BP-NAS search model for tests and the budget property run
# (tools/benchmark/budget_property.py): ResNet-8 for CIFAR, 3 searched BasicBlocks, 8-bit stem
# and fc fixed, the paper's 8 CIFAR candidates, BOPs probed at 16x16. No data or schedule.
_base_ = ['../_base_/quant/classifier.py']
default_scope = 'mmpretrain'
custom_imports = dict(imports=['bpnas_mm'], allow_failed_imports=False)
candidates = [(2, 3), (2, 4), (3, 3), (3, 4), (4, 4), (4, 6), (6, 4), (8, 4)]
architecture = dict(
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=10, mean=[127.5] * 3,
                           std=[64.0] * 3, to_rgb=True),
    backbone=dict(type='bpnas_mm.ResNetCIFAR', depth=8),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=64,
              loss=dict(type='CrossEntropyLoss')))
model = dict(
    type='bpnas_mm.BPNAS', architecture=architecture, candidates=candidates, budget=3.0,
    quant={{_base_.cls_quant}}, grouping={{_base_.cls_grouping}},
    bops=dict(input_shape=(3, 16, 16)))
