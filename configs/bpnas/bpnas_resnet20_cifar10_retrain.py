# Retrain the searched mixed-precision ResNet20 (paper Sec. 4.1: 160 epochs,
# cutout, otherwise the search's W recipe). Point it at the search's file and
# choose where the weights start:
#   --cfg-options model.mixed_precision=work_dirs/<search>/mixed_precision.json \
#                 model.supernet_checkpoint=work_dirs/<search>/epoch_60.pth
# (or model.float_checkpoint=<float / reshaped float checkpoint>).
# The default file is the paper's own B_max = 3 configuration (Table 4).
_base_ = ['../quant/resnet20_cifar10_w4a4.py']

model = dict(
    mixed_precision='configs/mixed_precision/resnet20_cifar10_paper_bmax3.json',
    float_checkpoint=None,
    supernet_checkpoint=None)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Cutout', shape=16, pad_val=0, prob=1.0),
    dict(type='PackInputs'),
]
# (a random subset of the training set with dataset.max_samples=N; None = all)
train_dataloader = dict(
    batch_size=512,
    dataset=dict(_delete_=True, type='bpnas_mm.SplitDataset', ratio=1.0, max_samples=None,
                 seed=0, dataset=dict(type='CustomDataset', data_root='data/cifar10',
                                      data_prefix='train', with_label=True,
                                      pipeline=train_pipeline)))
