# Uniform W3A3 ResNet20 (first conv and classifier fixed at 8 bit).
_base_ = ['./resnet20_cifar10_w4a4.py']
model = dict(quant=dict(w_bits=3, a_bits=3))
