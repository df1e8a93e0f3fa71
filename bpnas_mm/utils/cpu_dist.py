"""Distributed runs on CPU-only machines.

mmengine 0.10's ``init_dist`` for the pytorch launcher always calls
``torch.cuda.set_device`` and fails without a GPU. The Runner skips its own
initialisation when a process group already exists, so the tools create a
gloo group first when there is no CUDA.
"""
import torch
import torch.distributed as dist


def init_cpu_dist_if_needed(launcher: str) -> bool:
    """Start a gloo process group for ``launcher='pytorch'`` without CUDA.

    Returns True when it started one.
    """
    if launcher != 'pytorch' or torch.cuda.is_available() or dist.is_initialized():
        return False
    dist.init_process_group(backend='gloo')
    return True
