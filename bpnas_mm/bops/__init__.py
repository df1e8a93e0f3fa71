"""BOPs accounting: shape probe, costs, reports."""
from .cost import (ConfigSummary, CostTotals, LayerCost, avg_bits, group_costs, summarize,
                   summarize_config)
from .probe import LayerShape, conv_macs, linear_macs, probe_layers

__all__ = ['ConfigSummary', 'CostTotals', 'summarize_config', 'LayerCost', 'avg_bits', 'group_costs', 'summarize', 'LayerShape',
           'conv_macs', 'linear_macs', 'probe_layers']
