"""Search space: grouping of layers into blocks, costs, the precision mutator."""
from .grouping import assign_groups, compile_grouping, layer_to_group
from .mutator import ArchSnapshot, PrecisionMutator

__all__ = ['ArchSnapshot', 'PrecisionMutator', 'assign_groups', 'compile_grouping',
           'layer_to_group']
