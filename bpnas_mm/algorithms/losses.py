"""Losses on the architecture parameters (paper Eq. 9, 12, 14).

All costs are in *average-bit* units (Eq. 4), the unit of the budget ``B_max``.

* :func:`barrier_penalty` - Eq. 12, ``-mu * log(log(B_max + 1 - E))``, extended
  linearly past ``E0 = B_max - delta`` (value and slope continuous there), so it
  is finite everywhere and keeps pushing ``E`` down when the supernet is over
  budget (a uniform start usually is);
* :func:`prob1_regularizer` - Eq. 14, ``sum_i prod_j (1 - p_ij)``;
* :func:`cost_loss` - Eq. 9's ``lambda * E`` (the DNAS-style baseline).
"""
import math
from typing import Sequence

import torch


def barrier_penalty(expected_bits: torch.Tensor, b_max: float, mu: float,
                    delta: float = 0.02) -> torch.Tensor:
    """Extended log-barrier of Eq. 12 (finite, never NaN).

    Args:
        expected_bits: ``E``, the supernet's expected average bits (scalar).
        b_max: the budget ``B_max`` in average bits.
        mu: the barrier weight (scheduled, small early).
        delta: the barrier is continued linearly for ``E > B_max - delta``.

    Returns:
        scalar tensor; for ``E <= B_max - delta`` exactly ``-mu log(log(B_max + 1 - E))``.

    >>> round(float(barrier_penalty(torch.tensor(2.0), 3.0, 1.0)), 6)  # -log(log 2)
    0.366513
    """
    if not 0 < delta < 1:
        raise ValueError(f'barrier delta must be in (0, 1), got {delta}')
    e0 = b_max - delta
    t0 = 1.0 + delta  # B_max + 1 - E0
    value0 = -mu * math.log(math.log(t0))
    slope0 = mu / (math.log(t0) * t0)  # Eq. 22 at E0
    inside = expected_bits.clamp(max=e0)  # keeps the log branch finite everywhere
    log_branch = -mu * torch.log(torch.log(b_max + 1.0 - inside))
    linear_branch = value0 + slope0 * (expected_bits - e0)
    return torch.where(expected_bits <= e0, log_branch, linear_branch)


def barrier_grad(expected_bits: float, b_max: float, mu: float) -> float:
    """Closed-form ``dL/dE`` of Eq. 22 (valid for ``E < B_max``)."""
    t = b_max + 1.0 - expected_bits
    return mu / (math.log(t) * t)


def prob1_regularizer(probs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Eq. 14: ``sum_i prod_j (1 - p_ij)`` over the groups' probability vectors.

    >>> prob1_regularizer([torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])]).item()
    0.25
    """
    return torch.stack([torch.prod(1.0 - p) for p in probs]).sum()


def cost_loss(expected_bits: torch.Tensor, lam: float) -> torch.Tensor:
    """Eq. 9's cost term ``lambda * E`` (DNAS-style baseline)."""
    return lam * expected_bits
