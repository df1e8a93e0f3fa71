from .checkpoint_safety import allow_mmengine_checkpoints
from .cpu_dist import init_cpu_dist_if_needed
from .malloc import keep_freed_memory

__all__ = ['allow_mmengine_checkpoints', 'init_cpu_dist_if_needed', 'keep_freed_memory']
