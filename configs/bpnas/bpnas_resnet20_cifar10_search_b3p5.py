# BP-NAS search for ResNet20 on CIFAR-10 at B_max = 3.5 average bits.
_base_ = ['./bpnas_resnet20_cifar10_search_b3.py']
model = dict(budget=3.5)
