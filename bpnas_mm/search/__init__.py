"""Search space: grouping of layers into blocks, costs, the budget's limits, the precision
mutator."""
from .constraints import Constraint, parse_budget
from .grouping import assign_groups, compile_grouping, layer_to_group
from .mutator import ArchSnapshot, PrecisionMutator

__all__ = ['ArchSnapshot', 'Constraint', 'PrecisionMutator', 'assign_groups',
           'compile_grouping', 'layer_to_group', 'parse_budget']
