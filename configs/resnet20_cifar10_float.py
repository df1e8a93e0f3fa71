# Float ResNet20 on CIFAR-10 (evaluate the converted public checkpoint with
# tools/test.py, or train from scratch with tools/train.py).
_base_ = [
    '_base_/models/resnet20_cifar.py', '_base_/datasets/cifar10_folder.py',
    '_base_/schedules/cifar10_cosine.py', '_base_/default_runtime_cls.py'
]
