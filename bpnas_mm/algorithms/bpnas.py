"""``BPNAS``: the supernet of paper Sec. 3.2 and one step of its Algorithm 1.

The model quantizes its task model like :class:`QuantModel`, turns the layers
of every searched group into mixed layers sharing one ``theta`` per group
(Eq. 6-7), and alternates per iteration (Algorithm 1):

1. a **W step** on a training batch: task loss only, the ``architecture``
   optimizer (SGD) over weights and quantizer clips; ``theta`` is frozen;
2. a **theta step** on a search-split batch: task loss + barrier penalty
   (Eq. 12) + Prob-1 (Eq. 14), or ``lambda * E`` (Eq. 9) for the DNAS-style
   baseline, with the ``arch_params`` optimizer (Adam); weights are frozen.

Evaluation runs the current argmax configuration (Eq. 8). Gradients are
averaged over ranks by hand (:func:`bpnas_mm.utils.distributed.average_gradients`)
and rank 0's sampled path is used by all, so a distributed search steps as one
process with the global batch would, and needs no DDP forward.
"""
import logging
import math
from typing import Dict, List, Optional

import torch
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper, OptimWrapperDict
from torch import nn

from ..bops.cost import LayerCost, summarize
from ..export.mixed_precision import MixedPrecision, from_groups
from ..models.patcher import set_submodule
from ..models.quant_model import QuantModel
from ..registry import MODELS
from ..search.mixed_layers import to_mixed
from ..search.space import SearchSpace
from ..utils.distributed import average_gradients, broadcast_choice
from .losses import barrier_penalty, cost_loss, prob1_regularizer

DEFAULT_SEARCH = dict(mode='composite', loss='barrier', mu=0.05, barrier_delta=0.02,
                      cost_lambda=0.1, prob1_weight=1.0, repair=True, theta_init='feasible',
                      init_margin=0.1)
SEARCH_CHOICES = dict(mode=('composite', 'sample'), loss=('barrier', 'cost'),
                      theta_init=('feasible', 'uniform'))


def check_search_cfg(search: Optional[dict]) -> dict:
    """Defaults plus validation of ``search=dict(...)``."""
    cfg = dict(DEFAULT_SEARCH)
    unknown = set(search or {}) - set(DEFAULT_SEARCH)
    if unknown:
        raise ValueError(f'search: unknown keys {sorted(unknown)}; allowed: {sorted(DEFAULT_SEARCH)}')
    cfg.update(search or {})
    for key, allowed in SEARCH_CHOICES.items():
        if cfg[key] not in allowed:
            raise ValueError(f'search.{key} must be one of {allowed}, got {cfg[key]!r}')
    if not isinstance(cfg['repair'], bool):
        raise ValueError(f'search.repair must be True or False, got {cfg["repair"]!r}')
    for key in ('mu', 'cost_lambda', 'prob1_weight', 'init_margin'):
        check_number(cfg[key], f'search.{key}', low=0.0)
    check_number(cfg['barrier_delta'], 'search.barrier_delta', low=0.0, high=1.0,
                 open_low=True, open_high=True)
    return cfg


def check_number(value, field: str, low: Optional[float] = None, high: Optional[float] = None,
                 open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a float if it is a finite real number in the range, else a
    ``ValueError`` that names ``field`` and the allowed range."""
    lo = '(' if open_low else '['
    hi = ')' if open_high else ']'
    allowed = f'{lo}{"-inf" if low is None else low}, {"inf" if high is None else high}{hi}'
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        raise ValueError(f'{field} must be a finite number in {allowed}, got {value!r}')
    return float(value)


def _param_key(group: str) -> str:
    return group.replace('.', '_')


@MODELS.register_module()
class BPNAS(QuantModel):
    """Mixed-precision supernet with barrier-penalty search.

    Args:
        architecture, quant, grouping, float_checkpoint, bops: as
            :class:`QuantModel` (layers ``quant.fixed`` keep their bits and
            stay out of the search).
        candidates (list): ``(w_bits, a_bits)`` pairs shared by all groups.
        budget (float): ``B_max`` in average bits (Eq. 5), checked against
            what the candidates can reach when the model is built.
        search (dict): ``mode`` ('composite' exact Eq. 6 or 'sample' path
            sampling), ``loss`` ('barrier' or 'cost'), ``mu`` (barrier weight;
            a :class:`BarrierMuHook` may schedule it), ``barrier_delta``,
            ``cost_lambda``, ``prob1_weight``, and ``repair`` (default True:
            an over-budget argmax is repaired into the budget; False writes the
            argmax as it is, for the DNAS-style baseline, which has no budget),
            ``theta_init``: 'feasible' (default) starts inside the budget, at
            ``E = B_max - init_margin``, by lowering every group's theta of the
            candidates dearer than ``B_max`` on their own (an interior-point
            method needs a feasible start; the uniform start is usually over
            budget; see :meth:`SearchSpace.feasible_theta`), or 'uniform'
            (theta = 0).
    """

    def __init__(self, architecture, candidates, budget: float, quant: Optional[dict] = None,
                 grouping=(), search: Optional[dict] = None, float_checkpoint=None,
                 bops: Optional[dict] = None, data_preprocessor=None, init_cfg=None):
        super().__init__(architecture, quant=quant, grouping=grouping,
                         float_checkpoint=float_checkpoint, bops=bops,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.search_cfg = check_search_cfg(search)
        self.mu = float(self.search_cfg['mu'])
        self.costs: List[LayerCost] = self.layer_costs()
        self.space = SearchSpace(self.costs, self.groups, candidates,
                                 include_fixed=self.bops_cfg['include_fixed'])
        self.budget = self.space.check_budget(budget, 'budget')
        keys = [_param_key(g) for g in self.space.names]
        if len(set(keys)) != len(keys):
            raise ValueError('grouping: two group names map to the same parameter key')
        self.arch_params = nn.ParameterDict(
            {k: nn.Parameter(torch.zeros(len(self.space.candidates))) for k in keys})
        if self.search_cfg['theta_init'] == 'feasible' and self.search_cfg['loss'] == 'barrier':
            theta0 = self.space.feasible_theta(self._start_bits(), hinge_bits=self.budget)
            with torch.no_grad():
                for theta in self.arch_params.values():
                    theta.copy_(theta0)
        for names in self.space.groups.values():
            for name in names:
                mixed = to_mixed(self.qlayers[name], self.space.candidates)
                set_submodule(self.architecture, name, mixed)
                self.qlayers[name] = mixed
        self._last_stats: Dict[str, float] = {}

    def _start_bits(self) -> float:
        """The expected bits of the feasible start: ``B_max - init_margin``, kept
        strictly above the cheapest configuration (at most halfway down to it),
        where ``softmax(theta)`` would be one-hot and the search could not move."""
        lo, hi = self.space.bits_range()
        room = self.budget - lo
        if room <= 1e-6:
            raise ValueError(
                f'budget: B_max = {self.budget} is the cheapest configuration ({lo:.4f} average '
                f'bits): a feasible start would be one-hot on it and nothing could be searched; '
                f'allowed: B_max in ({lo:.4f}, {hi:.4f}]')
        target = self.budget - self.search_cfg['init_margin']
        if target < lo + room / 2:
            print_log(
                f'search.init_margin={self.search_cfg["init_margin"]} would start at E = '
                f'{target:.4f} average bits, {"below" if target <= lo else "too close to"} the '
                f'cheapest configuration ({lo:.4f}); starting at E = {lo + room / 2:.4f}, halfway '
                f'between it and B_max = {self.budget}', logger='current', level=logging.WARNING)
            target = lo + room / 2
        return target

    # ------------------------------------------------------------ architecture
    def probs(self) -> List[torch.Tensor]:
        """Eq. 7: ``softmax(theta)`` per searched group, in search-space order."""
        return [torch.softmax(self.arch_params[_param_key(g)], 0) for g in self.space.names]

    def _set_arch(self, probs: Optional[List[torch.Tensor]], choice: Optional[Dict[str, int]]):
        for i, (g, names) in enumerate(self.space.groups.items()):
            for name in names:
                layer = self.qlayers[name]
                layer.arch_probs = None if probs is None else probs[i]
                layer.arch_choice = None if choice is None else choice[g]

    def _arch_for_training(self, with_grad: bool):
        probs = self.probs()
        if not with_grad:
            probs = [p.detach() for p in probs]
        choice = None
        if self.search_cfg['mode'] == 'sample':
            choice = broadcast_choice({g: int(torch.multinomial(p.detach(), 1).item())
                                       for g, p in zip(self.space.names, probs)})
        self._set_arch(probs, choice)
        return probs

    def expected_bits(self, probs=None) -> torch.Tensor:
        """Eq. 10 in average bits (differentiable in theta)."""
        return self.space.expected_bits(self.probs() if probs is None else probs)

    def arch_loss(self, probs) -> Dict[str, torch.Tensor]:
        """The theta-step regularizers: barrier (or cost) and Prob-1."""
        e = self.space.expected_bits(probs)
        out = dict(expected_bits=e)
        if self.search_cfg['loss'] == 'barrier':
            out['loss_barrier'] = barrier_penalty(e, self.budget, self.mu,
                                                  self.search_cfg['barrier_delta'])
        else:
            out['loss_cost'] = cost_loss(e, self.search_cfg['cost_lambda'])
        if self.search_cfg['prob1_weight'] > 0:
            out['loss_prob1'] = self.search_cfg['prob1_weight'] * prob1_regularizer(probs)
        return out

    # ---------------------------------------------------------------- training
    def _weight_params(self):
        return [p for p in self.architecture.parameters() if p.requires_grad]

    def _update(self, optim_wrapper: OptimWrapper, loss: torch.Tensor, params) -> None:
        """``OptimWrapper.update_params`` with a cross-rank gradient average."""
        optim_wrapper.backward(optim_wrapper.scale_loss(loss))
        average_gradients(params)
        if optim_wrapper.should_update():
            optim_wrapper.step()
            optim_wrapper.zero_grad()

    def train_step(self, data, optim_wrapper: OptimWrapperDict) -> Dict[str, torch.Tensor]:
        """One iteration of Algorithm 1.

        Args:
            data: ``dict(train=batch, search=batch or None)`` from
                :class:`BPNASSearchLoop` (a plain batch means W step only).
            optim_wrapper: ``OptimWrapperDict`` with ``architecture`` and
                ``arch_params`` (see :class:`BPNASOptimWrapperConstructor`).
        """
        if isinstance(data, dict) and 'train' in data:
            train_batch, search_batch = data['train'], data.get('search')
        else:
            train_batch, search_batch = data, None
        w_optim, theta_optim = optim_wrapper['architecture'], optim_wrapper['arch_params']
        w_params = self._weight_params()
        theta_params = list(self.arch_params.parameters())

        # 1. W step (Eq. 15): task loss on the training split, theta frozen.
        w_optim.zero_grad()
        self._arch_for_training(with_grad=False)  # theta's arithmetic stays float32 under AMP
        with w_optim.optim_context(self):
            batch = self.data_preprocessor(train_batch, True)
            loss, log_vars = self.parse_losses(self._run_forward(batch, mode='loss'))
        self._update(w_optim, loss, w_params)

        # 2. theta step (Eq. 16): task loss + constraint terms on the search split.
        if search_batch is not None:
            for p in w_params:
                p.requires_grad_(False)
            try:
                probs = self._arch_for_training(with_grad=True)
                with theta_optim.optim_context(self):
                    batch = self.data_preprocessor(search_batch, True)
                    task, _ = self.parse_losses(self._run_forward(batch, mode='loss'))
                reg = self.arch_loss(probs)
                total = task + sum(v for k, v in reg.items() if k.startswith('loss_'))
                if not torch.isfinite(total):
                    raise FloatingPointError(f'theta-step loss is not finite: {total.item()}')
                self._update(theta_optim, total, theta_params)
            finally:
                for p in w_params:
                    p.requires_grad_(True)
            log_vars['theta_task_loss'] = task.detach()
            for k, v in reg.items():
                log_vars[k] = v.detach()
            log_vars['mu'] = torch.tensor(self.mu)
        self._set_arch(None, None)
        return log_vars

    # -------------------------------------------------------------- evaluation
    def sampled_choice(self):
        """Eq. 8 argmax, repaired into the budget (unless ``search.repair`` is
        False); returns (choice, moves)."""
        probs = self.probs()
        argmax = self.space.argmax(probs)
        if not self.search_cfg['repair']:
            return argmax, []
        return self.space.repair(argmax, probs, self.budget)

    def _eval_step(self, data, mode):
        choice, _ = self.sampled_choice()
        self._set_arch(None, choice)
        try:
            batch = self.data_preprocessor(data, False)
            return self._run_forward(batch, mode=mode)
        finally:
            self._set_arch(None, None)

    def val_step(self, data):
        return self._eval_step(data, 'predict')

    def test_step(self, data):
        return self._eval_step(data, 'predict')

    # ------------------------------------------------------------------ export
    def export(self) -> MixedPrecision:
        """The searched mixed-precision file, inside the budget (with ``search.repair``)."""
        probs = self.probs()
        argmax = self.space.argmax(probs)
        choice, moves = self.sampled_choice()
        cands = self.space.candidates
        group_bits = {g: cands[j] for g, j in choice.items()}
        fixed = {n: (m.w_bits, m.a_bits) for n, m in self.qlayers.items() if m.fixed_precision}
        costs = []
        for c in self.costs:
            if c.fixed:
                costs.append(c)
            else:
                g = next(g for g, names in self.space.groups.items() if c.name in names)
                w, a = group_bits[g]
                costs.append(LayerCost(c.name, c.kind, c.macs, c.params, w, a, False, c.group,
                                       c.rows))
        summary = summarize(costs, include_fixed=self.space.include_fixed)
        avg_bits = self.space.avg_bits_of(choice)
        assert math.isclose(avg_bits, summary['avg_bits'], rel_tol=1e-9)
        extra = dict(
            budget_avg_bits=self.budget, avg_bits=avg_bits, inside_budget=avg_bits <= self.budget,
            argmax_avg_bits=self.space.avg_bits_of(argmax),
            repaired=bool(moves), repair_moves=moves,
            expected_bits=float(self.expected_bits().detach()),
            probabilities={g: [round(float(v), 6) for v in p.detach()]
                           for g, p in zip(self.space.names, probs)},
            candidates=[list(c) for c in cands], search=dict(self.search_cfg, mu=self.mu),
            summary=summary, summary_all_layers=summarize(costs, include_fixed=True),
            bops_settings=dict(input_shape=list(self.bops_cfg['input_shape']),
                               num_rois=self.bops_cfg['num_rois']))
        groups_all = dict(self.groups)
        return from_groups(group_bits, groups_all, fixed=fixed,
                           source='bpnas_mm search (BP-NAS)', extra=extra)
