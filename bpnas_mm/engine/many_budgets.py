"""One supernet, many budgets: Algorithm 1's W steps once, its theta steps per budget.

A search alternates W steps and theta steps (Algorithm 1); the W steps depend on
the budget only through theta. Here the supernet's weights are trained once with
theta held uniform (``train_cfg.steps='weights'``: every candidate weighted alike,
or sampled alike in path-sampling mode) and saved; then, per budget, a search of
the theta steps only (``steps='theta'``, the weights frozen, the same iterations
and search samples as a full search) starts from those weights at that budget's
feasible start. Each budget has its own work dir and mixed-precision file, and is
validated with the supernet's weights at its configuration; with a retrain config
each configuration is also retrained briefly (from the shared supernet's weights
unless that config names its own) and validated again.

``tools/search_budgets.py`` is the command line; :func:`search_budgets` the job.
"""
import copy
import json
import math
import os.path as osp
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence

from mmengine.logging import print_log

from ..utils.atomic_write import write_atomic
from ..utils.user_files import InputError

SUPERNET = 'supernet.pth'


@dataclass
class BudgetResult:
    """One budget's search from the shared supernet."""
    avg_bits_limit: float
    work_dir: str
    file: str
    avg_bits: float
    expected_bits: float
    inside_budget: bool
    repaired: bool
    constraints: Dict[str, dict]
    metrics: Dict[str, float]
    minutes: float
    retrained: Dict[str, float] = field(default_factory=dict)
    retrain_minutes: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ManyBudgets:
    """What :func:`search_budgets` did: the supernet and one result per budget."""
    supernet: str
    supernet_minutes: float
    results: List[BudgetResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(supernet=self.supernet, supernet_minutes=self.supernet_minutes,
                    results=[r.to_dict() for r in self.results])


def check_budgets(budgets: Sequence[float]) -> List[float]:
    """Distinct finite numbers, in the order given."""
    out = []
    for b in budgets:
        if not isinstance(b, (int, float)) or isinstance(b, bool) or not math.isfinite(b):
            raise InputError(f'--budgets: {b!r} is not a finite number of average bits')
        if float(b) in out:
            raise InputError(f'--budgets: {b:g} is given twice (both would write '
                             f'{budget_dir_name(b)}); give each budget once')
        out.append(float(b))
    if not out:
        raise InputError('--budgets: give one or more average-bit budgets, e.g. 3 4 5')
    return out


def budget_dir_name(avg_bits: float) -> str:
    """``budget_3.5`` (the work dir of one budget under the driver's)."""
    return f'budget_{avg_bits:g}'


def with_avg_bits(budget, avg_bits: float):
    """The config's ``model.budget`` with its average-bit limit set to ``avg_bits``
    (a dict keeps its other limits)."""
    if isinstance(budget, dict) or hasattr(budget, 'items'):
        return dict(dict(budget), avg_bits=avg_bits)
    return avg_bits


def _check_search_cfg(cfg) -> None:
    model_type = str(cfg.model.get('type', ''))
    loop_type = str(cfg.get('train_cfg', {}).get('type', ''))
    if not model_type.endswith('BPNAS'):
        raise InputError(f'config: model.type is {model_type!r}; the many-budgets search '
                         f'needs a search config (model.type=bpnas_mm.BPNAS)')
    if not loop_type.endswith('BPNASSearchLoop'):
        raise InputError(f'config: train_cfg.type is {loop_type!r}; the many-budgets search '
                         f'needs train_cfg.type=bpnas_mm.BPNASSearchLoop')
    steps = cfg.train_cfg.get('steps', 'both')
    if steps != 'both':
        raise InputError(f"config: train_cfg.steps={steps!r}; the driver sets the steps of each "
                         f"phase itself: leave it out (or 'both')")


def _phase(cfg, work_dir: str, name: str):
    c = copy.deepcopy(cfg)
    c.work_dir = work_dir
    c.experiment_name = name  # mmengine appends the time: each phase has its own logger
    c.load_from, c.resume = None, False
    c.train_cfg.warmup_epochs = 0
    c.train_cfg.val_begin = c.train_cfg.max_epochs + 1  # validated once, after training
    return c


SUPERNET_MODES = ('composite', 'sample')


def weights_phase(cfg, work_dir: str, mode: Optional[str] = None):
    """The config that trains the shared weights: W steps only, theta uniform;
    ``mode`` (default: the config's ``search.mode``) is how a W step uses theta:
    ``'composite'`` trains the uniform mixture of every candidate (Eq. 6),
    ``'sample'`` one uniformly sampled path per step (each configuration on its
    own, as one-shot NAS trains its supernets)."""
    c = _phase(cfg, work_dir, 'supernet')
    c.train_cfg.steps = 'weights'
    search = dict(c.model.get('search') or {}, theta_init='uniform')
    if mode is not None:
        search['mode'] = mode
    c.model.search = search
    return c


def theta_phase(cfg, avg_bits: float, supernet: Optional[str], work_dir: str,
                mu: Optional[Sequence[float]] = None):
    """The config of one budget's search: theta steps only, from ``supernet``'s weights;
    ``mu = (start, end)`` replaces the schedule of the config's ``BarrierMuHook``."""
    c = _phase(cfg, work_dir, budget_dir_name(avg_bits))
    c.train_cfg.steps = 'theta'
    c.model.budget = with_avg_bits(cfg.model.budget, avg_bits)
    c.model.float_checkpoint = None
    c.model.supernet_checkpoint = supernet
    if mu is not None:
        hooks = [h for h in c.get('custom_hooks') or []
                 if str(h.get('type', '')).endswith('BarrierMuHook')]
        if not hooks:
            raise InputError('--theta-mu: the config has no bpnas_mm.BarrierMuHook in '
                             'custom_hooks to schedule; set model.search.mu instead')
        hooks[0].update(start=float(mu[0]), end=float(mu[1]))
    return c


def _check_retrain_cfg(cfg) -> None:
    model_type = str(cfg.model.get('type', ''))
    if not model_type.endswith('QuantModel'):
        raise InputError(f'--retrain: model.type is {model_type!r}; a retrain config is a '
                         f'fixed-precision one (model.type=bpnas_mm.QuantModel, '
                         f'model.mixed_precision=...)')
    if not cfg.get('val_dataloader'):
        raise InputError('--retrain: the retrain config has no val_dataloader; the '
                         'retrained configurations could not be compared')


def _scale_schedule(c, epochs: int) -> None:
    """``train_cfg.max_epochs = epochs``; an epoch-based scheduler that spanned the
    whole run (``T_max`` or ``end`` equal to the old max_epochs) spans the new one."""
    old = c.train_cfg.max_epochs
    c.train_cfg.max_epochs = epochs
    schedulers = c.get('param_scheduler') or []
    for s in (schedulers if isinstance(schedulers, list) else [schedulers]):
        if not s.get('by_epoch', True):
            continue
        for key in ('T_max', 'end'):
            if s.get(key) == old:
                s[key] = epochs


def retrain_phase(retrain_cfg, avg_bits: float, mixed_precision: str, supernet: str,
                  work_dir: str, epochs: Optional[int] = None):
    """The config that retrains one budget's configuration (``mixed_precision``, a
    file) with ``retrain_cfg``'s recipe, for ``epochs`` (default: the config's),
    from the shared supernet's weights unless the config names a float or supernet
    checkpoint."""
    c = copy.deepcopy(retrain_cfg)
    c.work_dir = work_dir
    c.experiment_name = f'{budget_dir_name(avg_bits)}_retrain'
    c.load_from, c.resume = None, False
    c.model.mixed_precision = mixed_precision
    if not c.model.get('float_checkpoint') and not c.model.get('supernet_checkpoint'):
        c.model.supernet_checkpoint = supernet
    if epochs is not None:
        _scale_schedule(c, epochs)
    c.train_cfg.val_begin = c.train_cfg.max_epochs + 1  # validated once, after training
    return c


def _validate(runner) -> Dict[str, float]:
    validated = runner.val() if runner.cfg.get('val_dataloader') else {}
    return {k: float(v) for k, v in (validated or {}).items() if isinstance(v, (int, float))}


def _check_all(cfg, budgets: List[float]) -> None:
    """Every budget checked on the supernet, as its search would build it, before
    any training."""
    from mmengine.registry import MODELS, DefaultScope
    c = theta_phase(cfg, budgets[0], None, cfg.work_dir)
    with DefaultScope.overwrite_default_scope(c.get('default_scope')):
        model = MODELS.build(c.model)
    for b in budgets:
        try:
            model.check_budget(with_avg_bits(cfg.model.budget, b), field=f'--budgets {b:g}')
        except InputError:
            raise
        except ValueError as e:
            raise InputError(str(e)) from None


def search_budgets(cfg, budgets: Sequence[float], build_runner: Callable,
                   on_result: Optional[Callable[[ManyBudgets], None]] = None,
                   retrain_cfg=None, retrain_epochs: Optional[int] = None,
                   supernet_mode: Optional[str] = None,
                   theta_mu: Optional[Sequence[float]] = None) -> ManyBudgets:
    """Train the supernet of ``cfg`` (a BP-NAS search config) once, then search each
    budget (average bits) from it; writes ``<work_dir>/supernet/``,
    ``<work_dir>/budget_<b>/`` (and ``budget_<b>/retrain/`` with ``retrain_cfg``,
    see :func:`retrain_phase`) and returns what each produced. ``supernet_mode``:
    see :func:`weights_phase`; ``theta_mu``: see :func:`theta_phase`. ``on_result`` is called after the supernet and
    after each budget (to write tables as they grow)."""
    _check_search_cfg(cfg)
    if supernet_mode is not None and supernet_mode not in SUPERNET_MODES:
        raise InputError(f'--supernet-mode: {supernet_mode!r} is not one of {SUPERNET_MODES}')
    budgets = check_budgets(list(budgets))
    if retrain_cfg is not None:
        _check_retrain_cfg(retrain_cfg)
    if retrain_epochs is not None and retrain_epochs < 1:
        raise InputError(f'--retrain-epochs: {retrain_epochs} is not a number of epochs (>= 1)')
    if theta_mu is not None:
        if len(theta_mu) != 2 or not all(math.isfinite(m) and m > 0 for m in theta_mu):
            raise InputError(f'--theta-mu: {list(theta_mu)} is not START END, two positive '
                             f'barrier weights')
        theta_phase(cfg, budgets[0], None, cfg.work_dir, theta_mu)  # refused here, not later
    _check_all(cfg, budgets)
    work = cfg.work_dir
    t0 = time.time()
    phase = weights_phase(cfg, osp.join(work, 'supernet'), supernet_mode)
    print_log(f'many budgets {[f"{b:g}" for b in budgets]}: training the shared supernet '
              f'({cfg.train_cfg.max_epochs} epochs of W steps, theta uniform, '
              f'{phase.model.search.get("mode", "composite")})', logger='current')
    runner = build_runner(phase)
    runner.train()
    runner.save_checkpoint(runner.work_dir, SUPERNET, save_optimizer=False,
                           save_param_scheduler=False)
    supernet = osp.join(runner.work_dir, SUPERNET)
    del runner
    done = ManyBudgets(supernet, (time.time() - t0) / 60)
    if on_result:
        on_result(done)
    for k, b in enumerate(budgets):
        t0 = time.time()
        print_log(f'many budgets [{k + 1}/{len(budgets)}]: B_max = {b:g} average bits, theta '
                  f'steps from {supernet}', logger='current')
        runner = build_runner(theta_phase(cfg, b, supernet, osp.join(work, budget_dir_name(b)),
                                          theta_mu))
        runner.train()
        metrics = _validate(runner)
        path = osp.join(runner.work_dir, 'mixed_precision.json')
        with open(path) as f:
            mp = json.load(f)
        result = BudgetResult(
            avg_bits_limit=b, work_dir=runner.work_dir, file=path, avg_bits=mp['avg_bits'],
            expected_bits=mp['expected_bits'], inside_budget=mp['inside_budget'],
            repaired=mp['repaired'], constraints=mp.get('constraints', {}), metrics=metrics,
            minutes=(time.time() - t0) / 60)
        del runner
        if retrain_cfg is not None:
            t0 = time.time()
            print_log(f'many budgets [{k + 1}/{len(budgets)}]: retraining the B_max = {b:g} '
                      f'configuration ({result.avg_bits:.4f} bits)', logger='current')
            runner = build_runner(retrain_phase(retrain_cfg, b, path, supernet,
                                                osp.join(result.work_dir, 'retrain'),
                                                retrain_epochs))
            runner.train()
            result.retrained = _validate(runner)
            result.retrain_minutes = (time.time() - t0) / 60
            del runner
        done.results.append(result)
        if on_result:
            on_result(done)
    return done


def budgets_table(done: ManyBudgets, metric: Optional[str]) -> str:
    """The per-budget results as a Markdown table (the retrained metric when any
    configuration was retrained)."""
    retrained = any(r.retrained for r in done.results)
    name = metric or 'metric'
    head = (f'| B_max | avg bits | inside | repaired | E (bits) | {name}, supernet weights | '
            + (f'{name}, retrained | ' if retrained else '') + 'minutes |')
    lines = [head, '|' + '---|' * (8 if retrained else 7)]

    def cell(values):
        value = values.get(metric) if metric else None
        return '-' if value is None else f'{value:.4g}'
    for r in done.results:
        lines.append(f'| {r.avg_bits_limit:g} | {r.avg_bits:.4f} | '
                     f'{"yes" if r.inside_budget else "NO"} | {"yes" if r.repaired else "no"} | '
                     f'{r.expected_bits:.4f} | {cell(r.metrics)} | '
                     + (f'{cell(r.retrained)} | ' if retrained else '')
                     + f'{r.minutes + r.retrain_minutes:.1f} |')
    return '\n'.join(lines) + (f'\n\nshared supernet: {done.supernet} '
                               f'({done.supernet_minutes:.1f} min)')


def default_metric(done: ManyBudgets) -> Optional[str]:
    """The first validation metric of the first budget (``accuracy/top1``,
    ``coco/bbox_mAP``), or None when nothing was validated."""
    for r in done.results:
        if r.metrics:
            return next(iter(r.metrics))
    return None


def plot_curve(series: Dict[str, List[tuple]], ylabel: str, path: str,
               budgets: Sequence[float] = ()) -> str:
    """``label -> [(avg_bits, value), ...]`` as lines over average bits, the
    budgets as dotted verticals; a PNG written atomically to ``path``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, points in series.items():
        points = sorted(points)
        ax.plot([x for x, _ in points], [y for _, y in points], marker='o', label=label)
    for b in budgets:
        ax.axvline(b, color='0.7', linestyle=':', linewidth=1)
    ax.set_xlabel('average bits of the configuration (Eq. 4)')
    ax.set_ylabel(ylabel)
    ax.legend()
    fig.tight_layout()
    write_atomic(path, lambda f: fig.savefig(f, format='png', dpi=100), binary=True)
    plt.close(fig)
    return path


def write_outputs(done: ManyBudgets, work_dir: str, metric: Optional[str]) -> List[str]:
    """``budgets.json``, ``budgets.md``, one ``mixed_precision_b<b>.json`` per
    budget and ``<metric>_vs_avg_bits.png`` (when there is a metric) in ``work_dir``."""
    written = [write_atomic(osp.join(work_dir, 'budgets.json'),
                            lambda f: json.dump(done.to_dict(), f, indent=2))]
    written.append(write_atomic(osp.join(work_dir, 'budgets.md'),
                                lambda f: f.write(budgets_table(done, metric) + '\n')))
    for r in done.results:
        with open(r.file) as src:
            text = src.read()
        written.append(write_atomic(osp.join(work_dir, f'mixed_precision_b{r.avg_bits_limit:g}.json'),
                                    lambda f, text=text: f.write(text)))
    series = {"supernet's weights": [(r.avg_bits, r.metrics[metric])
                                     for r in done.results if metric in r.metrics],
              'retrained': [(r.avg_bits, r.retrained[metric])
                            for r in done.results if metric in r.retrained]}
    series = {label: points for label, points in series.items() if points}
    if series:
        name = metric.replace('/', '_')
        written.append(plot_curve(series, metric, osp.join(work_dir, f'{name}_vs_avg_bits.png'),
                                  [r.avg_bits_limit for r in done.results]))
    return written
