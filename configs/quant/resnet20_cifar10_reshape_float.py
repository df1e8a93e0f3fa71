# Float pre-training with distribution reshaping (paper Eq. 17-18): weights
# clipped to k * mean|W| (k = 2), inputs through a learnable Clip-ReLU.
_base_ = ['./resnet20_cifar10_w4a4.py']
model = dict(quant=dict(w_bits=32, a_bits=32, reshape_k=2.0, fixed=[]))
