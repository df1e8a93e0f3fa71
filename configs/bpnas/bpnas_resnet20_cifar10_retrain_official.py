# As bpnas_resnet20_cifar10_retrain.py, reading the official CIFAR-10 python
# batches (<data_root>/cifar-10-batches-py) with mmpretrain's CIFAR10.
_base_ = ['./bpnas_resnet20_cifar10_retrain.py']

data_root = 'data/cifar10'
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='Cutout', shape=16, pad_val=0, prob=1.0),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(dataset=dict(
    _delete_=True, type='CIFAR10', data_root=data_root, split='train', download=False,
    pipeline=train_pipeline)))
val_dataloader = dict(dataset=dict(_delete_=True, type='CIFAR10', data_root=data_root,
                                   split='test', download=False,
                                   pipeline=[dict(type='PackInputs')]))
test_dataloader = val_dataloader
