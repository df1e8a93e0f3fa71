# As bpnas_resnet20_cifar10_search_b3.py, reading the official CIFAR-10 python
# batches (<data_root>/cifar-10-batches-py, mmpretrain's CIFAR10) instead of
# an image folder. Nothing is downloaded: put the extracted archive there.
_base_ = ['./bpnas_resnet20_cifar10_search_b3.py']

data_root = 'data/cifar10'
train_pipeline = [
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
official_train = dict(_delete_=True, type='CIFAR10', data_root=data_root, split='train',
                      download=False, pipeline=train_pipeline)
train_dataloader = dict(dataset=dict(dataset=official_train))
train_cfg = dict(search_dataloader=dict(dataset=dict(dataset=official_train)))
val_dataloader = dict(dataset=dict(_delete_=True, type='CIFAR10', data_root=data_root,
                                   split='test', download=False,
                                   pipeline=[dict(type='PackInputs')]))
test_dataloader = val_dataloader
