"""Several limits at once: ``budget=4.0`` or ``budget=dict(avg_bits=4.0, weight_mb=2.5)``.

Each limit is a :class:`Constraint`: a name as the config writes it, its limit in
that unit, and the same limit as a ``bound`` on one of the search space's cost
kinds, which are averages in bits (the unit the barrier acts in):

=============  ===========================================  ============  ===========
name           meaning                                       unit          kind
=============  ===========================================  ============  ===========
``avg_bits``   ``sqrt(BOPs / MACs)`` <= limit (Eq. 5)        bits          avg_bits
``avg_w_bits`` weight bits per parameter <= limit            bits          avg_w_bits
``weight_mb``  quantized weights' size <= limit              MB (1e6 B)    avg_w_bits
``w_comp``     W-Comp (32 / weight bits per param) >= limit  ratio         avg_w_bits
=============  ===========================================  ============  ===========

Sizes count the layers the budget counts (``bops.include_fixed``): without it,
``weight_mb`` is the size of the searched layers' weights. Biases and
BatchNorm are not counted.

When several limits are given, a configuration inside all of them is searched
for when the model is built (:func:`find_feasible`): a combination none
satisfies is refused there, with the reachable range of each.
"""
import itertools
import logging
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log

from ..bops.cost import limit_relation, limit_slack
from ..utils.config_checks import check_number
from .space import SearchSpace

#: name -> (cost kind, unit) of every limit a budget may hold
NAMES = {'avg_bits': ('avg_bits', 'bits'), 'avg_w_bits': ('avg_w_bits', 'bits'),
         'weight_mb': ('avg_w_bits', 'MB'), 'w_comp': ('avg_w_bits', 'x')}
MB = 8e6  #: bits per megabyte (1e6 bytes)


@dataclass(frozen=True)
class Constraint:
    """One limit: ``value(name) <= limit`` (``>=`` for ``w_comp``), the same as
    ``cost(kind) <= bound``."""
    name: str
    limit: float
    kind: str
    bound: float
    total_params: int  #: the parameters a size is counted over

    def value(self, cost: float) -> float:
        """A cost of this kind (bits) in the name's unit."""
        if self.name == 'weight_mb':
            return cost * self.total_params / MB
        if self.name == 'w_comp':
            return 32.0 / cost
        return cost

    def slack(self, value: float) -> float:
        """How far ``value`` is inside the limit (negative: outside)."""
        return limit_slack(self.name, value, self.limit)

    def describe(self, value: float) -> str:
        """``'weight_mb 0.1912 <= 0.2 MB'``."""
        return (f'{self.name} {value:.4g} {limit_relation(self.name)} {self.limit:g} '
                f'{NAMES[self.name][1]}')


def _bound_of(name: str, limit: float, total_params: int) -> float:
    if name == 'weight_mb':
        return limit * MB / total_params
    if name == 'w_comp':
        return 32.0 / limit
    return limit


def parse_budget(budget, space: SearchSpace, field: str = 'budget') -> List[Constraint]:
    """The constraints of ``budget`` (a number: ``avg_bits``; a dict: several), each
    checked against what the candidates can reach, and all of them together
    (a list of :class:`Constraint` is taken as it is)."""
    if isinstance(budget, (list, tuple)) and all(isinstance(c, Constraint) for c in budget):
        return list(budget)
    if isinstance(budget, dict) or hasattr(budget, 'items'):
        items = dict(budget)
        if not items:
            raise ValueError(f'{field}: an empty dict; give one or more of {sorted(NAMES)}')
        unknown = sorted(set(items) - set(NAMES))
        if unknown:
            raise ValueError(f'{field}: unknown limits {unknown}; allowed: {sorted(NAMES)}')
        kinds = [NAMES[n][0] for n in items]
        for kind in set(kinds):
            same = [n for n in items if NAMES[n][0] == kind]
            if len(same) > 1:
                raise ValueError(f'{field}: {" and ".join(same)} limit the same thing '
                                 f'(the weight bits); give one of them')
    else:
        items = {'avg_bits': budget}
    out = []
    for name, limit in items.items():
        where = field if name == 'avg_bits' and not isinstance(budget, dict) else f'{field}.{name}'
        kind, unit = NAMES[name]
        if name == 'avg_bits' and not isinstance(budget, dict):
            limit = space.check_budget(limit, field)  # the paper's message, as before
        else:
            limit = check_number(limit, where, low=0, open_low=True)
            c = Constraint(name, limit, kind, _bound_of(name, limit, space.total_params),
                           space.total_params)
            lo, hi = sorted(c.value(v) for v in space.range_of(kind))
            if not lo - 1e-9 <= limit <= hi + 1e-9:
                raise ValueError(
                    f'{where} = {limit!r} {unit} is outside what the candidates can reach for '
                    f'this model: [{lo:.4g}, {hi:.4g}] {unit} (cheapest .. dearest configuration, '
                    f'fixed layers {"counted" if space.include_fixed else "not counted"})')
        out.append(Constraint(name, float(limit), kind,
                              _bound_of(name, float(limit), space.total_params),
                              space.total_params))
    if len(out) > 1 and find_feasible(space, out) is None:
        raise ValueError(_infeasible_message(space, out, field))
    return out


def _inside(space: SearchSpace, constraints: Sequence[Constraint], choice) -> bool:
    return all(space.cost_of(c.kind, choice) <= c.bound + 1e-9 for c in constraints)


def _weighted_choices(space: SearchSpace, constraints: Sequence[Constraint], steps: int = 101):
    """Per-group argmin of a weighted sum of the kinds' relative costs, for
    weights spread over the simplex (the Lagrangian corners of the problem)."""
    lin = [space.linear_costs(c.kind) for c in constraints]
    norms = [(c.bound ** 2 if c.kind == 'avg_bits' else c.bound) * total
             for c, (_, _, _, total) in zip(constraints, lin)]
    grid = [i / (steps - 1) for i in range(steps)]
    for weights in itertools.product(grid, repeat=len(constraints) - 1):
        if sum(weights) > 1 + 1e-12:
            continue
        lam = list(weights) + [1 - sum(weights)]
        choice = {}
        for g in space.names:
            scores = [sum(l * size[g] * cost[j] / n
                          for l, (_, size, cost, _), n in zip(lam, lin, norms))
                      for j in range(len(space.candidates))]
            choice[g] = min(range(len(scores)), key=scores.__getitem__)
        yield choice


def find_feasible(space: SearchSpace, constraints: Sequence[Constraint]
                  ) -> Optional[Dict[str, int]]:
    """A configuration inside every constraint, with the largest smallest relative
    slack among those found; None if none is found. Candidates: the per-group
    optima of weighted sums of the costs, and each of them repaired (the greedy
    repair mixes groups, which a weighted sum alone cannot when groups are alike)."""
    bounds = {c.kind: c.bound for c in constraints}
    uniform = [torch.full((len(space.candidates),), 1.0 / len(space.candidates))] * len(
        space.names)
    seen, tried = set(), []
    for choice in _weighted_choices(space, constraints):
        key = tuple(choice[g] for g in space.names)
        if key not in seen:
            seen.add(key)
            tried.append(choice)
    found = []
    for choice in tried:
        if not _inside(space, constraints, choice):
            try:
                choice, _ = space.repair(choice, uniform, bounds)
            except RuntimeError:  # the greedy repair got stuck: not this one
                continue
        found.append(choice)
    best, best_slack = None, None
    for choice in found:
        if not _inside(space, constraints, choice):
            continue
        slack = min((c.bound - space.cost_of(c.kind, choice)) / c.bound for c in constraints)
        if best_slack is None or slack > best_slack + 1e-12:
            best, best_slack = choice, slack
    return best


def _infeasible_message(space: SearchSpace, constraints: Sequence[Constraint], field: str) -> str:
    parts = []
    for c in constraints:
        ws = [w * a for w, a in space.candidates] if c.kind == 'avg_bits' else \
            [w for w, _ in space.candidates]
        cheapest = {g: ws.index(min(ws)) for g in space.names}
        others = [f'{o.name} {o.value(space.cost_of(o.kind, cheapest)):.4g}'
                  for o in constraints if o is not c]
        parts.append(f'the configuration cheapest in {c.name} has {", ".join(others)}')
    limits = ', '.join(f'{c.name} {limit_relation(c.name)} {c.limit:g} {NAMES[c.name][1]}'
                       for c in constraints)
    ranges = '; '.join(
        f'{c.name} alone reaches '
        f'[{min(c.value(v) for v in space.range_of(c.kind)):.4g}, '
        f'{max(c.value(v) for v in space.range_of(c.kind)):.4g}] {NAMES[c.name][1]}'
        for c in constraints)
    return (f'{field}: no configuration found inside all limits together ({limits}): '
            f'{"; ".join(parts)}. {ranges}; raise a limit')


def constraint_states(space: SearchSpace, constraints: Sequence[Constraint],
                      probs: Sequence[torch.Tensor], choice: Dict[str, int]) -> Dict[str, dict]:
    """Per constraint: the limit, the supernet's expected value, the value of
    ``choice``, its slack and whether it is inside (what logs and files show)."""
    out = {}
    for c in constraints:
        value = c.value(space.cost_of(c.kind, choice))
        out[c.name] = dict(limit=c.limit, unit=NAMES[c.name][1],
                           expected=c.value(float(space.expected(c.kind, probs))),
                           value=value, slack=c.slack(value),
                           inside=space.cost_of(c.kind, choice) <= c.bound + 1e-9)
    return out


def feasible_start(space: SearchSpace, constraints: Sequence[Constraint], margin: float,
                   theta: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
    """Per-group theta whose expected costs are inside every limit, with ``margin``
    (bits) to spare where the limits allow (at most half the slack of the
    configuration :func:`find_feasible` finds).

    From ``theta`` (shared; default uniform), first a shared tilt away from the
    candidates dear in the limits the start breaks, ``theta - beta * d`` with
    ``d_j`` their costs scaled to [0, 1], and the smallest ``beta`` that reaches
    every target: the start stays as spread as the limits allow and favours no
    configuration. Where no shared tilt gets there (limits that need groups to
    differ), the probabilities are mixed with that configuration instead,
    ``p = (1 - t) softmax(theta) + t onehot``, with the smallest ``t``.
    """
    theta = torch.zeros(len(space.candidates)) if theta is None else theta.float()
    base = torch.softmax(theta.double(), 0)
    target = find_feasible(space, constraints)
    goals = {c.kind: c.bound - min(margin, (c.bound - space.cost_of(c.kind, target)) / 2)
             for c in constraints}
    n = len(space.names)
    broken = [k for k, goal in goals.items() if float(space.expected(k, [base] * n)) > goal]
    if not broken:
        return {g: theta.clone() for g in space.names}
    tilt = torch.zeros(len(space.candidates), dtype=torch.float64)
    for kind in broken:
        cost = torch.tensor(space.linear_costs(kind)[2], dtype=torch.float64)
        tilt += (cost - cost.min()) / max(float(cost.max() - cost.min()), 1e-12)

    def tilted(beta):
        return [torch.softmax(theta.double() - beta * tilt, 0)] * n

    def tilt_fits(beta):
        p = tilted(beta)
        return all(float(space.expected(k, p)) <= goal + 1e-12 for k, goal in goals.items())

    if tilt_fits(50.0):  # (softmax of 50 x a unit gap: as near one-hot as a start should be)
        lo, hi = 0.0, 50.0
        for _ in range(60):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if tilt_fits(mid) else (mid, hi)
        return {g: (theta.double() - hi * tilt).float() for g in space.names}

    def probs_at(t):
        return [(1 - t) * base + t * torch.nn.functional.one_hot(
            torch.tensor(target[g]), len(space.candidates)).double() for g in space.names]

    def fits(t):
        p = probs_at(t)
        return all(float(space.expected(k, p)) <= goal + 1e-12 for k, goal in goals.items())

    lo, hi = 0.0, 0.999  # never one-hot: the search must be able to move
    if not fits(lo):
        if not fits(hi):
            print_log(f'theta_init: no start strictly inside every limit ({goals}); the '
                      f'configuration inside them has no slack: starting next to it',
                      logger='current', level=logging.WARNING)
        for _ in range(50):
            mid = (lo + hi) / 2
            lo, hi = (lo, mid) if fits(mid) else (mid, hi)
        lo = hi
    return {g: torch.log(p.clamp(min=1e-12)).float() for g, p in zip(space.names, probs_at(lo))}
