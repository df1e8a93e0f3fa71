"""Engine: the search loop, optimizer constructor, hooks and distributed wrapper."""
from .dist_wrapper import BPNASDistributedWrapper
from .hooks import ArchLoggingHook, BarrierMuHook, MixedPrecisionExportHook
from .optim_constructor import BPNASOptimWrapperConstructor
from .runner import SafeCheckpointRunner
from .search_loop import BPNASSearchLoop

__all__ = ['BPNASDistributedWrapper', 'ArchLoggingHook', 'BarrierMuHook',
           'MixedPrecisionExportHook', 'BPNASOptimWrapperConstructor', 'BPNASSearchLoop',
           'SafeCheckpointRunner']
