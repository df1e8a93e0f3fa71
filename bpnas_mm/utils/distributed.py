"""Collectives that every rank enters alike, whatever data it holds.

A distributed job hangs when ranks call different collectives, which is what
happens when a rank skips one because its input is empty (a RoI head without
proposals). Each helper here is a no-op in a single process and makes the
same calls on every rank in a distributed one.
"""
from typing import Dict, List, Sequence

import torch
from mmengine import dist

#: largest flat buffer of one gradient reduction (``mmengine.dist`` buckets)
GRAD_BUCKET_MB = 25


def gather_values(values: torch.Tensor) -> torch.Tensor:
    """The 1-D ``values`` of every rank, concatenated in rank order (any rank may
    hold none). Two collectives: the sizes, then the padded values."""
    values = values.flatten()
    if dist.get_world_size() == 1:
        return values
    sizes = torch.cat(dist.all_gather(torch.tensor([values.numel()], device=values.device)))
    longest = int(sizes.max())
    padded = values.new_zeros(longest)
    padded[:values.numel()] = values
    parts = dist.all_gather(padded)
    return torch.cat([p[:int(n)] for p, n in zip(parts, sizes)])


def any_rank(flag: bool, device=None) -> bool:
    """True on every rank when ``flag`` is True on any of them."""
    if dist.get_world_size() == 1:
        return bool(flag)
    t = torch.tensor([int(bool(flag))], device=device)
    dist.all_reduce(t, op='max')
    return bool(t.item())


def average_gradients(params: Sequence[torch.Tensor]) -> None:
    """Average ``p.grad`` over ranks, as one process with every rank's batch would
    have it (equal per-rank batches): a parameter that received no gradient on
    any rank keeps ``grad=None`` (the optimizer skips it: no momentum, no weight
    decay), one that received it on some ranks counts zero on the others.

    One small reduction of the "has a gradient" flags, then the gradients in
    flat buckets of at most :data:`GRAD_BUCKET_MB`.
    """
    if dist.get_world_size() == 1 or not params:
        return
    device = params[0].device
    has_grad = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8,
                            device=device)
    dist.all_reduce(has_grad, op='max')
    used = [p for p, h in zip(params, has_grad.tolist()) if h]
    for p in used:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    dist.all_reduce_params([p.grad for p in used], coalesce=True,
                           bucket_size_mb=GRAD_BUCKET_MB, op='mean')


def broadcast_choice(choice: Dict[str, int], device=None) -> Dict[str, int]:
    """Rank 0's ``{group: candidate index}`` on every rank (one path per step for
    the whole global batch, as in a single process)."""
    if dist.get_world_size() == 1:
        return choice
    names: List[str] = list(choice)
    t = torch.tensor([choice[n] for n in names], dtype=torch.long, device=device)
    dist.broadcast(t, src=0)
    return dict(zip(names, t.tolist()))
