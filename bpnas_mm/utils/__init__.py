from .checkpoint_safety import allow_mmengine_checkpoints
from .cpu_dist import init_cpu_dist_if_needed

__all__ = ['allow_mmengine_checkpoints', 'init_cpu_dist_if_needed']
