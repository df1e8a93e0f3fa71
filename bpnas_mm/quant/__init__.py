"""Quantizers (Eq. 1, PACT) and quantized layers."""
from .bits import FLOAT_BITS, check_bits
from .layers import QConv2d, QLinear, QuantMixin
from .functional import fake_quant, num_steps, reshape_weight
from .quantizer import Quantizer
from .spec import QuantizerSpec, layer_specs
from .ste import round_ste, sign_ste

__all__ = ['FLOAT_BITS', 'check_bits', 'QConv2d', 'QLinear', 'QuantMixin',
           'reshape_weight', 'Quantizer', 'QuantizerSpec', 'layer_specs', 'fake_quant', 'num_steps', 'round_ste',
           'sign_ste']
