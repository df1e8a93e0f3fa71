"""BOPs accounting: shape probe, costs, reports."""
from .cost import LayerCost, avg_bits, group_costs, summarize
from .probe import LayerShape, conv_macs, linear_macs, probe_layers

__all__ = ['LayerCost', 'avg_bits', 'group_costs', 'summarize', 'LayerShape',
           'conv_macs', 'linear_macs', 'probe_layers']
