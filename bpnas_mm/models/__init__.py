"""Models: quantization patcher, QuantModel wrapper, CIFAR ResNet."""
from .patcher import QuantRules, quantizable_layers, quantize_model, quantized_layers
from .quant_model import QuantModel
from .resnet_cifar import ResNetCIFAR

__all__ = ['QuantRules', 'quantizable_layers', 'quantize_model', 'quantized_layers',
           'QuantModel', 'ResNetCIFAR']
