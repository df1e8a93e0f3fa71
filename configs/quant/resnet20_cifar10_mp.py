# ResNet20 with a mixed-precision file (default: the paper's Table 4, B_max = 3).
_base_ = ['./resnet20_cifar10_w4a4.py']
model = dict(mixed_precision='configs/mixed_precision/resnet20_cifar10_paper_bmax3.json')
