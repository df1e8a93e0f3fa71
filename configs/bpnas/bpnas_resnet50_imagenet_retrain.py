# Retrain the searched mixed-precision ResNet-50 on all 1,000 ImageNet classes
# (paper Sec. 4.2: 150 epochs, label smoothing, batch 1024 = 16 GPUs x 64).
#   tools/dist_train.sh configs/bpnas/bpnas_resnet50_imagenet_retrain.py 16 --cfg-options \
#       model.mixed_precision=work_dirs/bpnas_resnet50_imagenet10_search_b4/mixed_precision.json
# Without a file the model is the uniform W4A4 baseline (set model.quant.w_bits/a_bits
# for W3A3, or 32 for float).
_base_ = [
    '../_base_/models/resnet50_imagenet.py', '../_base_/datasets/imagenet.py',
    '../_base_/default_runtime_cls.py', '../_base_/quant/classifier.py'
]
max_epochs = 150
model = dict(
    _delete_=True,
    type='bpnas_mm.QuantModel',
    architecture={{_base_.model}},
    quant={{_base_.cls_quant}},  # W4A4, stem and classifier at 8 bit
    grouping={{_base_.cls_grouping}},
    bops=dict(input_shape=(3, 224, 224), include_fixed=False),
    mixed_precision=None,
    float_checkpoint=None)
train_dataloader = dict(batch_size=64)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.4, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, by_epoch=True, begin=5,
         end=max_epochs)]
auto_scale_lr = dict(base_batch_size=1024)
