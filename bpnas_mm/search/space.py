"""The search space: searched groups, their candidates and the budget arithmetic.

Built from the BOPs counter's per-layer MACs, so the expected cost of the
supernet (Eq. 10), the cost of a sampled configuration and the BOPs report all
use the same numbers. Units: ``*_bits`` are average bits (Eq. 4); ``bops`` are
bit operations.
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..bops.cost import LayerCost
from .candidates import Candidate, check_candidates


class SearchSpace:
    """Searched groups (all layers of a group share one candidate) and costs.

    Args:
        costs: per-layer costs from the shape probe (bits are ignored for
            searched layers).
        groups: group name -> layer names (fixed-precision layers are left out
            of the search and count at their own bits if ``include_fixed``).
        candidates: the ``(w_bits, a_bits)`` list shared by all groups.
        include_fixed: whether fixed-precision layers count in the budget.
    """

    def __init__(self, costs: Sequence[LayerCost], groups: Dict[str, List[str]],
                 candidates: Sequence[Candidate], include_fixed: bool = False):
        self.candidates = check_candidates(candidates)
        self.include_fixed = include_fixed
        by_name = {c.name: c for c in costs}
        fixed = [c for c in costs if c.fixed]
        self.fixed_macs = sum(c.macs for c in fixed) if include_fixed else 0
        self.fixed_bops = sum(c.bops for c in fixed) if include_fixed else 0
        self.groups: Dict[str, List[str]] = {}
        self.group_macs: Dict[str, int] = {}
        for g, names in groups.items():
            searched = [n for n in names if not by_name[n].fixed]
            if searched:
                self.groups[g] = searched
                self.group_macs[g] = sum(by_name[n].macs for n in searched)
        if not self.groups:
            raise ValueError('search space: every layer is fixed-precision; nothing to search')
        self.total_macs = self.fixed_macs + sum(self.group_macs.values())
        self.names = list(self.groups)
        self._macs = torch.tensor([self.group_macs[g] for g in self.names], dtype=torch.float64)
        self._cand_bits = torch.tensor([w * a for w, a in self.candidates], dtype=torch.float64)

    # ----------------------------------------------------------------- costs
    def expected_bits(self, probs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Eq. 10 in average bits: ``sqrt((F + sum_g MACs_g sum_j p_gj w_j a_j) / MACs)``.

        Differentiable in ``probs`` (one vector per group, in :attr:`names` order).
        """
        p = torch.stack(list(probs)).to(torch.float64)
        bops = self.fixed_bops + (self._macs.to(p.device) * (p @ self._cand_bits.to(p.device))).sum()
        return torch.sqrt(bops / self.total_macs).to(probs[0].dtype)

    def bops_of(self, choice: Dict[str, int]) -> int:
        """Exact BOPs of a configuration (group -> candidate index)."""
        return self.fixed_bops + sum(self.group_macs[g] * self.candidates[j][0] *
                                     self.candidates[j][1] for g, j in choice.items())

    def avg_bits_of(self, choice: Dict[str, int]) -> float:
        return math.sqrt(self.bops_of(choice) / self.total_macs)

    def bits_range(self) -> Tuple[float, float]:
        """Average bits of the cheapest and of the most expensive configuration."""
        costs = [w * a for w, a in self.candidates]
        lo = {g: costs.index(min(costs)) for g in self.names}
        hi = {g: costs.index(max(costs)) for g in self.names}
        return self.avg_bits_of(lo), self.avg_bits_of(hi)

    def check_budget(self, b_max: float, field: str = 'budget') -> float:
        """Raise unless ``b_max`` lies between the cheapest and dearest configuration."""
        lo, hi = self.bits_range()
        if (not isinstance(b_max, (int, float)) or isinstance(b_max, bool)
                or not lo <= b_max <= hi):  # NaN fails the comparison too
            raise ValueError(
                f'{field}: B_max = {b_max!r} average bits is outside what the candidates can '
                f'reach for this model: [{lo:.4f}, {hi:.4f}] (cheapest .. most expensive '
                f'configuration, fixed layers {"counted" if self.include_fixed else "not counted"})')
        return float(b_max)

    def feasible_theta(self, target_bits: float, hinge_bits: Optional[float] = None,
                       iters: int = 60) -> torch.Tensor:
        """A theta (shared by all groups) with expected cost ``<= target_bits``.

        ``theta_j = -beta * d_j`` with ``d_j >= 0`` rising with the candidate's
        cost ``c = w * a``; ``beta >= 0`` is the smallest that brings ``E`` to
        ``target_bits`` (bisection; ``E`` falls as ``beta`` grows). Zero
        (uniform) when the uniform start is already there.

        With ``hinge_bits`` (normally ``B_max``), ``d_j = max(c_j - hinge^2, 0)``:
        only candidates dearer than the budget on their own are pushed down and
        the others start tied, so the cheapest one is not the favourite from the
        first step (Prob-1 would sharpen any favourite it is given). When that
        cannot reach ``target_bits`` (fixed layers counted, say), or without
        ``hinge_bits``, ``d_j = c_j - c_min``: a tilt towards the cheapest.
        """
        cost = self._cand_bits.float()
        n = len(self.names)

        def e_of(direction, beta):
            p = torch.softmax(beta * direction, 0)
            return float(self.expected_bits([p] * n))

        def normalised(d):
            return -d / (float(d.max()) or 1.0)

        direction = normalised(cost - cost.min())
        if hinge_bits is not None:
            hinge = normalised((cost - hinge_bits ** 2).clamp(min=0))
            if e_of(hinge, 1e4) <= target_bits:
                direction = hinge
        if e_of(direction, 0.0) <= target_bits:
            return torch.zeros_like(cost)
        lo, hi = 0.0, 1.0
        while e_of(direction, hi) > target_bits:
            hi *= 2
            if hi > 1e4:
                return 1e4 * direction  # as close to the cheapest as it gets
        for _ in range(iters):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if e_of(direction, mid) > target_bits else (lo, mid)
        return hi * direction

    # -------------------------------------------------------------- sampling
    def argmax(self, probs: Sequence[torch.Tensor]) -> Dict[str, int]:
        """Eq. 8: the most probable candidate per group (first on ties)."""
        return {g: int(torch.argmax(p.detach()).item()) for g, p in zip(self.names, probs)}

    def repair(self, choice: Dict[str, int], probs: Sequence[torch.Tensor], b_max: float
               ) -> Tuple[Dict[str, int], List[str]]:
        """Move groups to cheaper candidates until the configuration fits ``b_max``.

        Deterministic greedy: each step takes the move with the smallest loss of
        log-probability per BOP saved (ties: earlier group, then candidate).
        Returns the new choice and one log line per move.
        """
        choice = dict(choice)
        logp = {g: torch.log(p.detach().double().clamp(min=1e-30)) for g, p in zip(self.names, probs)}
        cost = [w * a for w, a in self.candidates]
        budget_bops = b_max ** 2 * self.total_macs
        moves = []
        while self.bops_of(choice) > budget_bops + 1e-6:
            best = None
            for g in self.names:
                cur = choice[g]
                for j in range(len(self.candidates)):
                    if cost[j] >= cost[cur]:
                        continue
                    saved = self.group_macs[g] * (cost[cur] - cost[j])
                    price = float(logp[g][cur] - logp[g][j]) / saved
                    if best is None or price < best[0] - 1e-18:
                        best = (price, g, j)
            if best is None:  # cannot happen when the budget was checked
                raise RuntimeError('repair: no cheaper candidate left but still over budget')
            _, g, j = best
            moves.append(f'{g}: {self.candidates[choice[g]]} -> {self.candidates[j]}')
            choice[g] = j
        return choice, moves
