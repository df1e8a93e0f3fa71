"""Hooks of the search: barrier schedule, architecture logging, file export."""
import json
import math
import os
import os.path as osp
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from ..bops.cost import limit_relation
from ..export.mixed_precision import save_mixed_precision
from ..registry import HOOKS
from ..search.mutator import PrecisionMutator
from ..utils.atomic_write import write_atomic


def _algorithm(runner):
    """The search model: one with a :class:`PrecisionMutator` (``bpnas_mm.BPNAS``)."""
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if not isinstance(getattr(model, 'mutator', None), PrecisionMutator):
        raise TypeError(f'this hook needs a search model with a bpnas_mm PrecisionMutator '
                        f'(bpnas_mm.BPNAS), got {type(model).__name__}')
    return model


def _weights_only(runner) -> bool:
    """The loop trains the supernet's weights only (``train_cfg.steps='weights'``)."""
    return getattr(runner.train_loop, 'steps', 'both') == 'weights'


@HOOKS.register_module()
class BarrierMuHook(Hook):
    """Schedule the barrier weight ``mu`` over the search (paper: small early).

    ``mu = start + (end - start) * f(progress)`` with ``progress = iter / max_iters``
    and ``f`` linear, cosine (``(1 - cos(pi t)) / 2``) or constant (``mu = start``).
    """

    SCHEDULES = ('linear', 'cosine', 'constant')
    priority = 'NORMAL'

    def __init__(self, start: float = 0.05, end: float = 0.2, schedule: str = 'linear'):
        if schedule not in self.SCHEDULES:
            raise ValueError(f'BarrierMuHook.schedule must be one of {self.SCHEDULES}, '
                             f'got {schedule!r}')
        if min(start, end) < 0:
            raise ValueError(f'BarrierMuHook: start and end must be >= 0, got {start}, {end}')
        self.start, self.end, self.schedule = float(start), float(end), schedule

    def mu_at(self, progress: float) -> float:
        t = min(max(progress, 0.0), 1.0)
        if self.schedule == 'constant':
            return self.start
        f = t if self.schedule == 'linear' else (1 - math.cos(math.pi * t)) / 2
        return self.start + (self.end - self.start) * f

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        _algorithm(runner).set_mu(self.mu_at(runner.iter / max(runner.max_iters, 1)))


@HOOKS.register_module()
class ArchLoggingHook(Hook):
    """Log the importance factors, ``E`` and the argmax cost every ``interval`` iters.

    Scalars go to the visualizer (``arch/<group>/w<b>a<a>``, every backend:
    local JSON, TensorBoard, ...) and one JSON line per log to
    ``<work_dir>/arch_history.jsonl`` (read by ``tools/analysis/plot_search.py``).
    Silent while only the weights are trained (``train_cfg.steps='weights'``).
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, interval: int = 50, filename: str = 'arch_history.jsonl'):
        self.interval = interval
        self.filename = filename

    def before_train(self, runner) -> None:
        """After a resume, drop the records of iterations that will run again."""
        path = osp.join(runner.work_dir, self.filename)
        if runner.iter == 0 or not is_main_process() or not osp.isfile(path):
            return
        with open(path) as f:
            lines = [line for line in f if line.strip()]
        kept = [line for line in lines if json.loads(line).get('iter', 0) <= runner.iter]
        if len(kept) != len(lines):
            write_atomic(path, lambda f: f.writelines(kept))
            runner.logger.info(f'{self.filename}: dropped {len(lines) - len(kept)} records of '
                               f'iterations after {runner.iter} (they run again after the resume)')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if _weights_only(runner):
            return  # theta is not trained: nothing to follow
        if not self.every_n_train_iters(runner, self.interval) and not self.is_last_train_iter(runner):
            return
        self.log(runner)

    def log(self, runner) -> None:
        model = _algorithm(runner)
        arch, space = model.mutator.snapshot(), model.mutator.space
        record = dict(iter=runner.iter + 1, epoch=runner.epoch, mu=model.mu,
                      budget=model.budget, expected_bits=arch.expected_bits,
                      argmax_bits=arch.argmax_bits, sampled_bits=arch.choice_bits,
                      repaired=arch.repaired, candidates=[list(c) for c in space.candidates],
                      probs=arch.probs, constraints=arch.constraints)
        scalars = {f'arch/{g}/w{w}a{a}': p[j] for g, p in arch.probs.items()
                   for j, (w, a) in enumerate(space.candidates)}
        scalars.update({'arch/expected_bits': record['expected_bits'],
                        'arch/sampled_bits': record['sampled_bits']})
        runner.visualizer.add_scalars(scalars, step=runner.iter + 1)
        for name, state in arch.constraints.items():
            if name != 'avg_bits':
                scalars[f'arch/{name}/expected'] = state['expected']
                scalars[f'arch/{name}/value'] = state['value']
        decided = sum(max(p) > 0.9 for p in arch.probs.values())
        others = ''.join(f'; {_limit_text(name, s)}' for name, s in arch.constraints.items()
                         if name != 'avg_bits')
        runner.logger.info(
            f'arch: E={record["expected_bits"]:.4f} bits, argmax={record["argmax_bits"]:.4f}, '
            f'sampled={record["sampled_bits"]:.4f} (budget {model.budget}), mu={model.mu:.4g}, '
            f'{decided}/{len(arch.probs)} groups with p>0.9{others}')
        if is_main_process():
            with open(osp.join(runner.work_dir, self.filename), 'a') as f:
                f.write(json.dumps(record) + '\n')


@HOOKS.register_module()
class MixedPrecisionExportHook(Hook):
    """Write the searched mixed-precision file every ``interval`` epochs and at the end.

    Files: ``<work_dir>/<filename>`` (the latest) and, at checkpoints,
    ``<work_dir>/mixed_precision_epoch_<n>.json``. Always inside the budget
    (see :meth:`bpnas_mm.algorithms.BPNAS.export`). Nothing is written when
    the loop trains the weights only (``train_cfg.steps='weights'``): there is
    no search to write.
    """

    priority = 'LOW'

    def __init__(self, interval: int = 1, filename: str = 'mixed_precision.json'):
        self.interval = interval
        self.filename = filename
        self.last_path: Optional[str] = None

    def _write(self, runner, epoch: int, epoch_copy: bool) -> None:
        if _weights_only(runner):
            if not epoch_copy:
                runner.logger.info("train_cfg.steps='weights' trains the supernet's weights "
                                   'only: no mixed-precision file (search its budgets from '
                                   'this checkpoint, tools/search_budgets.py)')
            return
        model = _algorithm(runner)
        mp = model.export()
        mp.extra.update(epoch=epoch, iter=runner.iter)
        if not is_main_process():
            return
        path = save_mixed_precision(mp, osp.join(runner.work_dir, self.filename))
        if epoch_copy:
            save_mixed_precision(mp, osp.join(runner.work_dir,
                                              f'mixed_precision_epoch_{epoch}.json'))
        if mp.extra['repaired']:
            runner.logger.warning('argmax configuration was over budget; repaired: '
                                  + '; '.join(mp.extra['repair_moves']))
        s = mp.totals()
        others = ''.join(f'; {_limit_text(name, c)}'
                         for name, c in mp.extra.get('constraints', {}).items()
                         if name != 'avg_bits')
        runner.logger.info(
            f'mixed-precision file {os.path.abspath(path)}: avg bits {s.avg_bits:.4f} '
            f'(budget {mp.extra["budget_avg_bits"]}), B-Comp {s.b_comp:.2f}x, '
            f'W-Comp {s.w_comp:.2f}x{others}')
        self.last_path = path

    def after_train_epoch(self, runner) -> None:
        if self.every_n_epochs(runner, self.interval):  # runner.epoch is 0-based here
            self._write(runner, runner.epoch + 1, epoch_copy=True)

    def after_train(self, runner) -> None:
        self._write(runner, runner.epoch, epoch_copy=False)


def _limit_text(name: str, state: dict) -> str:
    """``'weight_mb: E=0.2100, file 0.1912 <= 0.2 MB (slack 0.0088)'``."""
    return (f'{name}: E={state["expected"]:.4f}, file {state["value"]:.4f} {limit_relation(name)} '
            f'{state["limit"]:g} {state["unit"]} (slack {state["slack"]:.4f})')
