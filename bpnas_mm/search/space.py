"""The search space: searched groups, their candidates and the budget arithmetic.

Built from the BOPs counter's per-layer MACs and parameter counts, so the
expected cost of the supernet (Eq. 10), the cost of a sampled configuration and
the BOPs report all use the same numbers. Units: ``*_bits`` are average bits
(Eq. 4); ``bops`` are bit operations; ``w_bits`` totals are parameter bits.

Costs come in two *kinds*, each an average in bits (the unit the barrier acts
in): ``'avg_bits'`` (``sqrt(BOPs / MACs)``, Eq. 4) and ``'avg_w_bits'`` (weight
bits per parameter, ``sum params * w_bits / params``: the model size).
"""
import math
from typing import Dict, List, Optional, Sequence, Tuple, Union

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
        self.fixed_params = sum(c.params for c in fixed) if include_fixed else 0
        self.fixed_w_bits = sum(c.params * c.w_bits for c in fixed) if include_fixed else 0
        self.groups: Dict[str, List[str]] = {}
        self.group_macs: Dict[str, int] = {}
        self.group_params: Dict[str, int] = {}
        for g, names in groups.items():
            searched = [n for n in names if not by_name[n].fixed]
            if searched:
                self.groups[g] = searched
                self.group_macs[g] = sum(by_name[n].macs for n in searched)
                self.group_params[g] = sum(by_name[n].params for n in searched)
        if not self.groups:
            raise ValueError('search space: every layer is fixed-precision; nothing to search')
        self.total_macs = self.fixed_macs + sum(self.group_macs.values())
        self.total_params = self.fixed_params + sum(self.group_params.values())
        self.names = list(self.groups)
        self._macs = torch.tensor([self.group_macs[g] for g in self.names], dtype=torch.float64)
        self._cand_bits = torch.tensor([w * a for w, a in self.candidates], dtype=torch.float64)
        self._params = torch.tensor([self.group_params[g] for g in self.names],
                                    dtype=torch.float64)
        self._cand_w = torch.tensor([w for w, _ in self.candidates], dtype=torch.float64)

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

    def expected_w_bits(self, probs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The expected weight bits per parameter: ``(W + sum_g params_g sum_j p_gj w_j)
        / params`` (linear in ``probs``, the model size's counterpart of Eq. 10)."""
        p = torch.stack(list(probs)).to(torch.float64)
        bits = self.fixed_w_bits + (self._params.to(p.device) * (p @ self._cand_w.to(p.device))).sum()
        return (bits / self.total_params).to(probs[0].dtype)

    def w_bits_of(self, choice: Dict[str, int]) -> float:
        """Exact weight bits per parameter of a configuration."""
        total = self.fixed_w_bits + sum(self.group_params[g] * self.candidates[j][0]
                                        for g, j in choice.items())
        return total / self.total_params

    # ------------------------------------------------------- costs by kind
    def expected(self, kind: str, probs: Sequence[torch.Tensor]) -> torch.Tensor:
        """The expected cost of ``kind`` (``'avg_bits'`` or ``'avg_w_bits'``)."""
        return self.expected_bits(probs) if kind == 'avg_bits' else self.expected_w_bits(probs)

    def cost_of(self, kind: str, choice: Dict[str, int]) -> float:
        """The exact cost of ``kind`` of a configuration."""
        return self.avg_bits_of(choice) if kind == 'avg_bits' else self.w_bits_of(choice)

    def range_of(self, kind: str) -> Tuple[float, float]:
        """The cheapest and dearest cost of ``kind`` over all configurations."""
        if kind == 'avg_bits':
            return self.bits_range()
        ws = [w for w, _ in self.candidates]
        lo = {g: ws.index(min(ws)) for g in self.names}
        hi = {g: ws.index(max(ws)) for g in self.names}
        return self.w_bits_of(lo), self.w_bits_of(hi)

    def linear_costs(self, kind: str) -> Tuple[float, Dict[str, int], List[float], float]:
        """``(fixed total, size per group, cost per candidate, total size)``: the cost
        of ``kind`` as ``f(fixed + sum_g size_g * cost_j) / total``, a sum over groups
        (``f = sqrt`` for ``'avg_bits'``, the identity for ``'avg_w_bits'``)."""
        if kind == 'avg_bits':
            return (self.fixed_bops, self.group_macs, [w * a for w, a in self.candidates],
                    self.total_macs)
        return (self.fixed_w_bits, self.group_params, [w for w, _ in self.candidates],
                self.total_params)

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

    def repair(self, choice: Dict[str, int], probs: Sequence[torch.Tensor],
               bounds: Union[float, Dict[str, float]], fallback: Optional[Dict[str, int]] = None
               ) -> Tuple[Dict[str, int], List[str]]:
        """Move groups to other candidates until the configuration fits every bound.

        ``bounds``: ``B_max`` in average bits, or kind -> bound (``cost <= bound``).
        Deterministic greedy: each step takes, among the moves that reduce the
        total relative excess over the bounds, the one with the smallest loss of
        log-probability per unit of cost saved (saved in the violated kinds,
        relative to each bound, minus what a move adds over a bound it breaks;
        ties: earlier group, then candidate). With one bound that is the
        cheapest loss per BOP saved. Should no move help (several bounds pulling
        apart), ``fallback`` (a configuration inside all of them) is taken.
        Returns the new choice and one log line per move.
        """
        bounds = {'avg_bits': bounds} if not isinstance(bounds, dict) else dict(bounds)
        choice = dict(choice)
        logp = {g: torch.log(p.detach().double().clamp(min=1e-30)) for g, p in zip(self.names, probs)}
        lin = {}
        for kind, bound in bounds.items():  # totals in linear units: BOPs, weight bits
            fixed, size, cost, total = self.linear_costs(kind)
            limit = (bound ** 2 if kind == 'avg_bits' else bound) * total
            lin[kind] = (fixed, size, cost, limit)
        first = next(iter(lin.values()))[3]
        scale = {k: first / v[3] for k, v in lin.items()}  # relative units; 1.0 for the first

        def excess(ch):
            return {k: fixed + sum(size[g] * cost[j] for g, j in ch.items()) - limit
                    for k, (fixed, size, cost, limit) in lin.items()}

        moves = []
        ex = excess(choice)
        while any(e > 1e-6 for e in ex.values()):
            over = sum(max(e, 0.0) * scale[k] for k, e in ex.items())
            best = None
            for g in self.names:
                cur = choice[g]
                for j in range(len(self.candidates)):
                    if j == cur:
                        continue
                    saved = {k: size[g] * (cost[cur] - cost[j])
                             for k, (_, size, cost, _) in lin.items()}
                    after = sum(max(ex[k] - saved[k], 0.0) * scale[k] for k in lin)
                    if not after < over:
                        continue
                    gain = sum(saved[k] * scale[k] if ex[k] > 1e-6  # what it saves ...
                               else -max(ex[k] - saved[k], 0.0) * scale[k]  # ... or breaks
                               for k in lin)
                    if gain <= 0:
                        continue
                    price = float(logp[g][cur] - logp[g][j]) / gain
                    if best is None or price < best[0] - 1e-18:
                        best = (price, g, j)
            if best is None:
                if fallback is None:  # cannot happen with one bound that was checked
                    raise RuntimeError('repair: no move left that brings the configuration '
                                       'closer to the budget')
                moves.append('no single move helps: the configuration found inside every '
                             'limit when the model was built')
                return dict(fallback), moves
            _, g, j = best
            moves.append(f'{g}: {self.candidates[choice[g]]} -> {self.candidates[j]}')
            choice[g] = j
            ex = excess(choice)
        return choice, moves
