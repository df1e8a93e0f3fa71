"""``BPNAS``: the supernet of paper Sec. 3.2 and one step of its Algorithm 1.

The model quantizes its task model like :class:`QuantModel`, turns the layers
of every searched group into mixed layers sharing one ``theta`` per group
(Eq. 6-7), and alternates per iteration (Algorithm 1):

1. a **W step** on a training batch: task loss only, the ``architecture``
   optimizer (SGD) over weights and quantizer clips; ``theta`` is frozen;
2. a **theta step** on a search-split batch: task loss + barrier penalty
   (Eq. 12) + Prob-1 (Eq. 14), or ``lambda * E`` (Eq. 9) for the DNAS-style
   baseline, with the ``arch_params`` optimizer (Adam); weights are frozen.

The search state (theta, the search space, sampling, the written choice) has
one owner, :class:`~bpnas_mm.search.mutator.PrecisionMutator` (``self.mutator``);
this class adds the losses and the steps. Evaluation runs the mutator's choice
(Eq. 8 argmax, repaired into the budget unless ``search.repair=False``). Gradients are
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

from ..bops.cost import LayerCost, summarize_config
from ..export.mixed_precision import MixedPrecision, from_groups
from ..models.patcher import set_submodule
from ..models.quant_model import QuantModel
from ..models.search_settings import search_settings
from ..models.supernet_weights import task_state
from ..registry import MODELS
from ..search.mixed_layers import to_mixed
from ..search.constraints import Constraint, feasible_start, parse_budget
from ..search.mutator import PrecisionMutator
from ..search.space import SearchSpace
from ..utils.config_checks import check_bool, check_choice, check_number, with_defaults
from ..utils.distributed import average_gradients
from ..utils.user_files import load_fitting
from .losses import barrier_penalty, cost_loss, prob1_regularizer

DEFAULT_SEARCH = dict(mode='composite', loss='barrier', mu=0.05, barrier_delta=0.02,
                      cost_lambda=0.1, prob1_weight=1.0, repair=True, theta_init='feasible',
                      init_margin=0.1, mu_scale={})
SEARCH_CHOICES = dict(mode=('composite', 'sample'), loss=('barrier', 'cost'),
                      theta_init=('feasible', 'uniform'))


def check_search_cfg(search: Optional[dict]) -> dict:
    """Defaults plus validation of ``search=dict(...)``."""
    cfg = with_defaults(search, DEFAULT_SEARCH, 'search')
    for key, allowed in SEARCH_CHOICES.items():
        check_choice(cfg[key], f'search.{key}', allowed)
    check_bool(cfg['repair'], 'search.repair')
    for key in ('mu', 'cost_lambda', 'prob1_weight', 'init_margin'):
        check_number(cfg[key], f'search.{key}', low=0.0)
    check_number(cfg['barrier_delta'], 'search.barrier_delta', low=0.0, high=1.0,
                 open_low=True, open_high=True)
    scales = cfg['mu_scale']
    if not isinstance(scales, dict) and not hasattr(scales, 'items'):
        raise ValueError(f'search.mu_scale must be a dict limit name -> factor, got {scales!r}')
    cfg['mu_scale'] = {k: check_number(v, f'search.mu_scale.{k}', low=0.0)
                       for k, v in dict(scales).items()}
    return cfg


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
        supernet_checkpoint (str, optional): instead of ``float_checkpoint``, a
            checkpoint of a search of the same config (same candidates and
            ``quant``): its shared weights and every candidate's clips, not its
            theta (which starts as ``theta_init`` says, for this ``budget``).
            One supernet trained once serves many budgets this way
            (``tools/search_budgets.py``).
    """

    def __init__(self, architecture, candidates, budget: float, quant: Optional[dict] = None,
                 grouping=(), search: Optional[dict] = None, float_checkpoint=None,
                 bops: Optional[dict] = None, supernet_checkpoint=None, data_preprocessor=None,
                 init_cfg=None):
        super().__init__(architecture, quant=quant, grouping=grouping,
                         float_checkpoint=float_checkpoint, bops=bops,
                         supernet_checkpoint=supernet_checkpoint,
                         data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.search_cfg = check_search_cfg(search)
        self.mu = float(self.search_cfg['mu'])
        self.costs: List[LayerCost] = super().layer_costs()  # before the layers are mixed
        space = SearchSpace(self.costs, self.groups, candidates,
                            include_fixed=self.bops_cfg['include_fixed'])
        constraints = parse_budget(budget, space)
        self._check_constraint_settings(constraints)
        theta0 = None
        if self.search_cfg['theta_init'] == 'feasible' and self.search_cfg['loss'] == 'barrier':
            theta0 = self._feasible_start(space, constraints)
        layers = {}
        for g, names in space.groups.items():
            for name in names:
                mixed = to_mixed(self.qlayers[name], space.candidates)
                set_submodule(self.architecture, name, mixed)
                self.qlayers[name] = mixed
            layers[g] = [self.qlayers[n] for n in names]
        self.mutator = PrecisionMutator(space, layers, constraints,
                                        repair=self.search_cfg['repair'], theta0=theta0)
        self._register_load_state_dict_pre_hook(_rename_old_theta_keys)

    def _load_supernet(self, state, path, what: str) -> None:
        """A search checkpoint's weights and clips, module for module; theta is
        left out (it belongs to that search's budget)."""
        load_fitting(self.architecture, task_state(state), path, what)

    def check_budget(self, budget, field: str = 'budget') -> List[Constraint]:
        """The limits of another ``budget`` for this supernet, checked as building
        a search with it would (reachable, jointly feasible, a start inside):
        the many-budgets driver checks every budget before it trains."""
        constraints = parse_budget(budget, self.space, field)
        self._check_constraint_settings(constraints)
        if self.search_cfg['theta_init'] == 'feasible' and self.search_cfg['loss'] == 'barrier':
            self._feasible_start(self.space, constraints)
        return constraints

    @property
    def space(self) -> SearchSpace:
        """The mutator's search space (groups, candidates, costs)."""
        return self.mutator.space

    @property
    def budget(self) -> Optional[float]:
        """``B_max`` in average bits (the mutator's; None when only other things are
        limited)."""
        return self.mutator.budget

    @property
    def constraints(self) -> List[Constraint]:
        """Every limit of the budget (the mutator's)."""
        return self.mutator.constraints

    def _check_constraint_settings(self, constraints: List[Constraint]) -> None:
        names = [c.name for c in constraints]
        unknown = sorted(set(self.search_cfg['mu_scale']) - set(names))
        if unknown:
            raise ValueError(f'search.mu_scale: {unknown} are not limits of the budget; '
                             f'allowed: {names}')
        if self.search_cfg['loss'] == 'cost' and names != ['avg_bits']:
            raise ValueError(f"search.loss='cost' (Eq. 9) weighs one cost, average bits; the "
                             f"budget limits {names}: use loss='barrier'")

    def _feasible_start(self, space: SearchSpace, constraints: List[Constraint]):
        """Theta inside the budget (an interior-point method needs a feasible start)."""
        bits = next((c for c in constraints if c.name == 'avg_bits'), None)
        theta = None
        if bits is not None:
            theta = space.feasible_theta(self._start_bits(space, bits.limit),
                                         hinge_bits=bits.limit)
            if len(constraints) == 1:
                return theta
        return feasible_start(space, constraints, self.search_cfg['init_margin'], theta)

    @property
    def arch_params(self) -> nn.ParameterDict:
        """``theta`` (the mutator's; the ``arch_params`` optimizer's parameters)."""
        return self.mutator.arch_params

    def _start_bits(self, space: SearchSpace, budget: float) -> float:
        """The expected bits of the feasible start: ``B_max - init_margin``, kept
        strictly above the cheapest configuration (at most halfway down to it),
        where ``softmax(theta)`` would be one-hot and the search could not move."""
        lo, hi = space.bits_range()
        room = budget - lo
        if room <= 1e-6:
            raise ValueError(
                f'budget: B_max = {budget} is the cheapest configuration ({lo:.4f} average '
                f'bits): a feasible start would be one-hot on it and nothing could be searched; '
                f'allowed: B_max in ({lo:.4f}, {hi:.4f}]')
        target = budget - self.search_cfg['init_margin']
        if target < lo + room / 2:
            print_log(
                f'search.init_margin={self.search_cfg["init_margin"]} would start at E = '
                f'{target:.4f} average bits, {"below" if target <= lo else "too close to"} the '
                f'cheapest configuration ({lo:.4f}); starting at E = {lo + room / 2:.4f}, halfway '
                f'between it and B_max = {budget}', logger='current', level=logging.WARNING)
            target = lo + room / 2
        return target

    def layer_costs(self) -> List[LayerCost]:
        """Per-layer costs (probed again, at ``bops.input_shape``) at the configuration
        the mutator writes now: what a BOPs report of a search shows."""
        choice, _ = self.mutator.choice()
        with self.mutator.applied(None, choice):
            costs = super().layer_costs()
        bits = {g: self.space.candidates[j] for g, j in choice.items()}
        return summarize_config(costs, bits, self.space.include_fixed).layers

    def set_mu(self, mu: float) -> None:
        """The barrier weight for the next steps (:class:`BarrierMuHook` schedules it)."""
        self.mu = check_number(mu, 'mu', low=0.0)

    # ------------------------------------------------------------ architecture
    def probs(self) -> List[torch.Tensor]:
        """Eq. 7 (the mutator's)."""
        return self.mutator.probs()

    def expected_bits(self, probs=None) -> torch.Tensor:
        """Eq. 10 in average bits (the mutator's; differentiable in theta)."""
        return self.mutator.expected_bits(probs)

    def _arch_for_training(self, with_grad: bool):
        """``(probs, choice)`` of one step: the importance factors (detached for
        the W step) and, in path sampling, the sampled path."""
        probs = self.probs()
        if not with_grad:
            probs = [p.detach() for p in probs]
        choice = self.mutator.sample(probs) if self.search_cfg['mode'] == 'sample' else None
        return probs, choice

    def arch_loss(self, probs) -> Dict[str, torch.Tensor]:
        """The theta-step regularizers: barrier (or cost) and Prob-1."""
        e = self.mutator.expected_bits(probs)
        out = dict(expected_bits=e)
        if self.search_cfg['loss'] == 'barrier':
            for c in self.constraints:  # one barrier per limit, in its kind's bits
                key = 'loss_barrier' if c.name == 'avg_bits' else f'loss_barrier_{c.name}'
                cost = e if c.kind == 'avg_bits' else self.space.expected(c.kind, probs)
                if c.kind != 'avg_bits':
                    out[f'expected_{c.kind}'] = cost
                mu = self.mu * self.search_cfg['mu_scale'].get(c.name, 1.0)
                out[key] = barrier_penalty(cost, c.bound, mu, self.search_cfg['barrier_delta'])
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
            data: ``dict(train=batch or None, search=batch or None)`` from
                :class:`BPNASSearchLoop` (a plain batch means W step only; no
                training batch, theta step only, the weights stay as they are).
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
        log_vars = {}
        if train_batch is not None:
            w_optim.zero_grad()
            probs, choice = self._arch_for_training(with_grad=False)  # float32 under AMP too
            with w_optim.optim_context(self), self.mutator.applied(probs, choice):
                batch = self.data_preprocessor(train_batch, True)
                loss, log_vars = self.parse_losses(self._run_forward(batch, mode='loss'))
            self._update(w_optim, loss, w_params)
        elif search_batch is None:
            raise ValueError('train_step: neither a training nor a search batch')

        # 2. theta step (Eq. 16): task loss + constraint terms on the search split.
        if search_batch is not None:
            for p in w_params:
                p.requires_grad_(False)
            try:
                probs, choice = self._arch_for_training(with_grad=True)
                with theta_optim.optim_context(self), self.mutator.applied(probs, choice):
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
        return log_vars

    # -------------------------------------------------------------- evaluation
    def _eval_step(self, data, mode):
        choice, _ = self.mutator.choice()
        with self.mutator.applied(None, choice):
            batch = self.data_preprocessor(data, False)
            return self._run_forward(batch, mode=mode)

    def val_step(self, data):
        return self._eval_step(data, 'predict')

    def test_step(self, data):
        return self._eval_step(data, 'predict')

    # ------------------------------------------------------------------ export
    def export(self) -> MixedPrecision:
        """The searched mixed-precision file, inside the budget (with ``search.repair``)."""
        arch = self.mutator.snapshot()
        cands = self.space.candidates
        group_bits = {g: cands[j] for g, j in arch.choice.items()}
        fixed = {n: (m.w_bits, m.a_bits) for n, m in self.qlayers.items() if m.fixed_precision}
        summary = summarize_config(self.costs, group_bits, self.space.include_fixed)
        avg_bits = arch.choice_bits
        assert math.isclose(avg_bits, summary.counted.avg_bits, rel_tol=1e-9)
        inside = all(s['inside'] for s in arch.constraints.values())
        extra = dict(
            budget_avg_bits=self.budget, avg_bits=avg_bits, inside_budget=inside,
            argmax_avg_bits=arch.argmax_bits,
            repaired=arch.repaired, repair_moves=list(arch.repair_moves),
            expected_bits=arch.expected_bits, probabilities=arch.probs,
            candidates=[list(c) for c in cands], search=dict(self.search_cfg, mu=self.mu),
            summary=summary.counted.to_dict(), summary_all_layers=summary.all_layers.to_dict(),
            bops_settings=dict(input_shape=list(self.bops_cfg['input_shape']),
                               num_rois=self.bops_cfg['num_rois']),
            searched_with=search_settings(self.quant_rules, self.grouping, self.bops_cfg),
            constraints=arch.constraints)
        return from_groups(group_bits, dict(self.groups), fixed=fixed,
                           source='bpnas_mm search (BP-NAS)', extra=extra)


def _rename_old_theta_keys(state_dict, prefix, *args) -> None:
    """Checkpoints written before the mutator kept theta at ``arch_params.*``."""
    old = prefix + 'arch_params.'
    for key in [k for k in state_dict if k.startswith(old)]:
        state_dict[prefix + 'mutator.' + key[len(prefix):]] = state_dict.pop(key)
