"""The precision mutator: the one owner of the search state.

It holds ``theta`` (one vector per searched group, ``arch_params``) and the
:class:`~bpnas_mm.search.space.SearchSpace`, and answers everything asked of the
architecture: the importance factors ``softmax(theta)`` (Eq. 7), their
expected cost (Eq. 10), a sampled path, the written configuration (Eq. 8
argmax, repaired into the budget unless ``repair=False``), and it sets a
configuration on the mixed layers for the length of a ``with`` block. The
algorithm (:class:`~bpnas_mm.algorithms.BPNAS`) adds the losses and
Algorithm 1; the hooks and the export ask the mutator (in the spirit of
mmrazor's mutator / algorithm split).
"""
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..utils.distributed import broadcast_choice
from .constraints import Constraint, constraint_states, find_feasible, parse_budget
from .space import SearchSpace

Choice = Dict[str, int]  #: group -> candidate index


def param_key(group: str) -> str:
    """``arch_params`` key of a group (module names cannot contain dots)."""
    return group.replace('.', '_')


@dataclass(frozen=True)
class ArchSnapshot:
    """The architecture at one moment: what the log, the plots and the file show."""
    probs: Dict[str, List[float]]   #: group -> softmax(theta)
    expected_bits: float            #: E (Eq. 10)
    argmax: Choice                  #: Eq. 8
    argmax_bits: float
    choice: Choice                  #: what is written: argmax, repaired if configured
    choice_bits: float
    repair_moves: Tuple[str, ...]   #: one line per move of the repair
    #: per limit of the budget: limit, expected (E), value of ``choice``, slack, inside
    constraints: Dict[str, dict] = field(default_factory=dict)

    @property
    def repaired(self) -> bool:
        return bool(self.repair_moves)


class PrecisionMutator(nn.Module):
    """``theta`` per searched group, and every question about the architecture.

    Args:
        space: groups, candidates and the cost arithmetic.
        layers: group name -> the mixed layers of that group.
        budget: ``B_max`` in average bits, or several limits
            (:mod:`~bpnas_mm.search.constraints`), checked against ``space``.
        repair: repair an over-budget argmax into the budget (False: write
            the argmax as it is, for the DNAS-style baseline).
        theta0: the start, shared by every group (a tensor) or per group (a
            dict); default zeros (uniform).
    """

    def __init__(self, space: SearchSpace, layers: Dict[str, Sequence[nn.Module]],
                 budget, repair: bool = True,
                 theta0: Union[None, torch.Tensor, Dict[str, torch.Tensor]] = None):
        super().__init__()
        self.space = space
        self.constraints: List[Constraint] = parse_budget(budget, space)
        #: ``B_max`` in average bits (None when the budget limits other things only)
        self.budget = next((c.limit for c in self.constraints if c.name == 'avg_bits'), None)
        #: inside every limit; what the repair falls back on when several pull apart
        self.fallback = find_feasible(space, self.constraints) if len(self.constraints) > 1 \
            else None
        self.repair = bool(repair)
        keys = [param_key(g) for g in space.names]
        if len(set(keys)) != len(keys):
            raise ValueError('grouping: two group names map to the same parameter key')
        zeros = torch.zeros(len(space.candidates))
        start = {g: (theta0.get(g, zeros) if isinstance(theta0, dict)
                     else zeros if theta0 is None else theta0) for g in space.names}
        self.arch_params = nn.ParameterDict(
            {param_key(g): nn.Parameter(start[g].detach().clone().float())
             for g in space.names})
        missing = [g for g in space.names if not layers.get(g)]
        if missing:
            raise ValueError(f'mutator: groups without mixed layers: {missing}')
        self._layers = {g: list(layers[g]) for g in space.names}  # not submodules

    # ------------------------------------------------------------- questions
    def probs(self) -> List[torch.Tensor]:
        """Eq. 7: ``softmax(theta)`` per searched group, in search-space order."""
        return [torch.softmax(self.arch_params[param_key(g)], 0) for g in self.space.names]

    def expected_bits(self, probs: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        """Eq. 10 in average bits (differentiable in theta)."""
        return self.space.expected_bits(self.probs() if probs is None else probs)

    def sample(self, probs: Optional[Sequence[torch.Tensor]] = None) -> Choice:
        """One path: a candidate per group drawn from ``probs`` (rank 0's draw on
        every rank when distributed)."""
        probs = self.probs() if probs is None else probs
        drawn = {g: int(torch.multinomial(p.detach(), 1).item())
                 for g, p in zip(self.space.names, probs)}
        return broadcast_choice(drawn)

    def argmax(self, probs: Optional[Sequence[torch.Tensor]] = None) -> Choice:
        """Eq. 8: the most probable candidate per group."""
        return self.space.argmax(self.probs() if probs is None else probs)

    def choice(self, probs: Optional[Sequence[torch.Tensor]] = None
               ) -> Tuple[Choice, List[str]]:
        """The configuration to write and evaluate: the argmax, repaired into
        the budget when ``repair`` is on; returns ``(choice, repair moves)``."""
        probs = [p.detach() for p in (self.probs() if probs is None else probs)]
        argmax = self.space.argmax(probs)
        if not self.repair:
            return argmax, []
        return self.space.repair(argmax, probs, self.bounds(), fallback=self.fallback)

    def bounds(self) -> Dict[str, float]:
        """Cost kind -> bound (``cost <= bound``) of every limit."""
        return {c.kind: c.bound for c in self.constraints}

    @torch.no_grad()
    def snapshot(self) -> ArchSnapshot:
        """Probabilities, E, argmax and the written choice, all at once."""
        probs = [p.detach().cpu() for p in self.probs()]
        argmax = self.space.argmax(probs)
        choice, moves = self.choice(probs)
        return ArchSnapshot(
            probs={g: [round(float(v), 6) for v in p] for g, p in zip(self.space.names, probs)},
            expected_bits=float(self.space.expected_bits(probs)), argmax=argmax,
            argmax_bits=self.space.avg_bits_of(argmax), choice=choice,
            choice_bits=self.space.avg_bits_of(choice), repair_moves=tuple(moves),
            constraints=constraint_states(self.space, self.constraints, probs, choice))

    # ----------------------------------------------------------------- layers
    @contextmanager
    def applied(self, probs: Optional[Sequence[torch.Tensor]] = None,
                choice: Optional[Choice] = None) -> Iterator[None]:
        """Within the block, the mixed layers run with ``probs`` (the Eq. 6
        mixture, or the gates of a sampled path) and/or ``choice`` (one
        candidate per group); afterwards, always, with neither."""
        self._set(probs, choice)
        try:
            yield
        finally:
            self._set(None, None)

    def _set(self, probs, choice) -> None:
        for i, g in enumerate(self.space.names):
            for layer in self._layers[g]:
                layer.arch_probs = None if probs is None else probs[i]
                layer.arch_choice = None if choice is None else choice[g]

    def extra_repr(self) -> str:
        limits = ', '.join(f'{c.name}={c.limit:g}' for c in self.constraints)
        return (f'groups={len(self.space.names)}, candidates={self.space.candidates}, '
                f'budget=({limits}), repair={self.repair}')
