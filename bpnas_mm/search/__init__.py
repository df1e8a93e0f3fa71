"""Search space: grouping of layers into blocks."""
from .grouping import assign_groups, compile_grouping, layer_to_group

__all__ = ['assign_groups', 'compile_grouping', 'layer_to_group']
