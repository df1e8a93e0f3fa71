"""BPNAS on a tiny classifier and tiny data: Algorithm 1 keeps its promises."""
import json

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from bpnas_mm.engine import BPNASOptimWrapperConstructor
from bpnas_mm.export import load_mixed_precision, save_mixed_precision

from .tiny_data import batch

TINY = Config.fromfile('configs/bpnas/bpnas_resnet8_tiny_search.py')
CANDS = [tuple(c) for c in TINY.candidates]
ARCH = TINY.architecture.to_dict()


def build(budget=3.0, mode='composite', loss='barrier', seed=0, theta_init='uniform',
          repair=True):
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    model = MODELS.build(dict(
        TINY.model.to_dict(), budget=budget,
        search=dict(mode=mode, loss=loss, mu=0.1, cost_lambda=0.5, theta_init=theta_init,
                    repair=repair)))
    optim = BPNASOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        arch_params=dict(optimizer=dict(type='Adam', lr=0.05, weight_decay=1e-3))))(model)
    return model, optim


def test_groups_candidates_and_start_outside_budget():
    model, _ = build()
    assert model.space.names == ['backbone.layer1.0', 'backbone.layer2.0', 'backbone.layer3.0']
    assert model.expected_bits().item() == pytest.approx((131 / 8) ** 0.5)  # 4.05 > 3
    assert sum(p.numel() for p in model.arch_params.parameters()) == 3 * 8


def test_w_step_moves_weights_only_and_theta_step_theta_only():
    model, optim = build()
    model.train()
    theta0 = [p.detach().clone() for p in model.arch_params.parameters()]
    w0 = model.architecture.backbone.layer1[0].conv1.weight.detach().clone()
    model.train_step(dict(train=batch(0), search=None), optim)
    assert all(torch.equal(a, b) for a, b in zip(theta0, model.arch_params.parameters()))
    w1 = model.architecture.backbone.layer1[0].conv1.weight.detach().clone()
    assert not torch.equal(w0, w1)
    # a theta step alone (lr 0 for W) moves theta and leaves W untouched
    for group in optim['architecture'].optimizer.param_groups:
        group['lr'] = 0.0
        group['momentum'] = 0.0
    logs = model.train_step(dict(train=batch(1), search=batch(2)), optim)
    assert not all(torch.equal(a, b) for a, b in zip(theta0, model.arch_params.parameters()))
    assert torch.equal(w1, model.architecture.backbone.layer1[0].conv1.weight)
    for key in ('loss', 'theta_task_loss', 'expected_bits', 'loss_barrier', 'loss_prob1'):
        assert torch.isfinite(logs[key]), key


@pytest.mark.parametrize('budget', [2.7, 3.0, 3.5])
@pytest.mark.parametrize('seed', range(4))
def test_short_search_stays_finite_and_exports_inside_budget(budget, seed, tmp_path):
    model, optim = build(budget=budget, seed=seed, mode='sample' if seed % 2 else 'composite')
    model.train()
    e0 = model.expected_bits().item()
    assert e0 > budget  # the uniform start is outside the budget
    theta0 = torch.cat([p.detach().clone() for p in model.arch_params.parameters()])
    for step in range(12):
        logs = model.train_step(dict(train=batch(100 * seed + step),
                                     search=batch(100 * seed + step + 50)), optim)
        assert all(torch.isfinite(v) for v in logs.values())
    theta1 = torch.cat([p.detach() for p in model.arch_params.parameters()])
    assert not torch.equal(theta0, theta1)
    assert model.expected_bits().item() < e0  # the barrier pushes E down
    mp = model.export()
    assert mp.extra['avg_bits'] <= budget and mp.extra['inside_budget']
    assert mp.extra['summary']['avg_bits'] == pytest.approx(mp.extra['avg_bits'])
    path = save_mixed_precision(mp, tmp_path / 'mp.json')
    loaded = load_mixed_precision(path)
    assert loaded.layers['backbone.conv1'] == dict(w_bits=8, a_bits=8, fixed=True)
    assert len(loaded.layers) == 8  # 6 searched convs, stem, fc
    assert json.load(open(path))['budget_avg_bits'] == budget


@pytest.mark.parametrize('mode', ['composite', 'sample'])
def test_search_steps_on_each_device(mode, device):
    """Algorithm 1 where the model lives (CUDA too, where a GPU is present)."""
    model, optim = build(mode=mode, theta_init='feasible')
    model = model.to(device).train()
    theta0 = torch.cat([p.detach().clone() for p in model.arch_params.parameters()])
    for step in range(3):
        logs = model.train_step(dict(train=batch(step), search=batch(step + 10)), optim)
        assert all(torch.isfinite(v) for v in logs.values())
    theta1 = torch.cat([p.detach() for p in model.arch_params.parameters()])
    assert theta1.device.type == device.type and not torch.equal(theta0, theta1)
    assert model.export().extra['inside_budget']
    model.eval()
    assert model.val_step(batch(20))[0].pred_score.shape == (10,)


def test_cost_loss_baseline_runs_and_reports_its_term():
    model, optim = build(loss='cost')
    model.train()
    logs = model.train_step(dict(train=batch(0), search=batch(1)), optim)
    assert 'loss_cost' in logs and 'loss_barrier' not in logs


def test_eval_runs_the_sampled_configuration():
    model, _ = build()
    model.eval()
    out = model.val_step(batch(3))
    assert len(out) == 4 and out[0].pred_score.shape == (10,)
    assert all(m.arch_probs is None and m.arch_choice is None for m in model.qlayers.values()
               if hasattr(m, 'arch_choice'))


@pytest.mark.parametrize('kwargs,match', [
    (dict(budget=1.0), 'budget: B_max = 1.0 average bits is outside'),
    (dict(budget=9.0), 'outside what the candidates can reach'),
    (dict(mode='gumbel'), r"search.mode must be one of \('composite', 'sample'\)"),
    (dict(loss='l2'), r"search.loss must be one of \('barrier', 'cost'\)"),
])
def test_bad_search_settings_fail_at_build(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build(**kwargs)


def test_empty_candidates_fail_at_build():
    init_default_scope('mmpretrain')
    with pytest.raises(ValueError, match='candidates must be a non-empty list'):
        MODELS.build(dict(type='bpnas_mm.BPNAS', architecture=ARCH, candidates=[], budget=3.0,
                          bops=dict(input_shape=(3, 16, 16))))


@pytest.mark.parametrize('repair', [True, False])
def test_repair_switch_for_the_dnas_baseline(repair):
    model, _ = build(loss='cost', repair=repair)
    with torch.no_grad():
        for theta in model.arch_params.values():
            theta[7] = 5.0  # (8, 4) everywhere: 5.66 bits, over the 3-bit budget
    mp = model.export()
    assert mp.extra['argmax_avg_bits'] == pytest.approx(32 ** 0.5)
    if repair:
        assert mp.extra['inside_budget'] and mp.extra['repaired']
        assert mp.extra['avg_bits'] <= 3.0
    else:
        assert not mp.extra['inside_budget'] and not mp.extra['repaired']
        assert mp.extra['avg_bits'] == mp.extra['argmax_avg_bits']


@pytest.mark.parametrize('budget', [2.7, 3.0, 3.5])
def test_feasible_start_is_inside_the_budget(budget):
    model, optim = build(budget=budget, theta_init='feasible')
    e0 = model.expected_bits().item()
    assert e0 == pytest.approx(budget - 0.1, abs=1e-3)
    probs = model.probs()[0]
    costs = torch.tensor([w * a for w, a in CANDS], dtype=torch.float)
    fits = costs <= budget ** 2  # start tied; only the dearer ones are pushed down
    assert torch.allclose(probs[fits], probs.max()) and torch.all(probs[~fits] < probs.max())
    model.train()
    for step in range(6):
        logs = model.train_step(dict(train=batch(step), search=batch(step + 20)), optim)
        assert torch.isfinite(logs['loss_barrier'])
    assert model.expected_bits().item() < budget


def test_feasible_start_keeps_uniform_when_already_inside():
    model, _ = build(budget=5.0, theta_init='feasible')
    assert all(torch.equal(t, torch.zeros(8)) for t in model.arch_params.values())


@pytest.mark.parametrize('search,match', [
    (dict(barrier_delta=-0.1), r'search.barrier_delta must be a finite number in \(0.0, 1.0\)'),
    (dict(barrier_delta='0.02'), 'search.barrier_delta'),
    (dict(barrier_delta=1.0), 'search.barrier_delta'),
    (dict(mu=float('nan')), r'search.mu must be a finite number in \[0.0, inf\], got nan'),
    (dict(cost_lambda=float('inf')), 'search.cost_lambda'),
    (dict(prob1_weight=True), 'search.prob1_weight'),
    (dict(init_margin=-1), 'search.init_margin'),
])
def test_every_numeric_search_field_is_checked_at_build(search, match):
    from bpnas_mm.algorithms.bpnas import check_search_cfg
    with pytest.raises(ValueError, match=match):
        check_search_cfg(search)


@pytest.mark.parametrize('budget', [float('nan'), True])
def test_budget_must_be_a_real_number(budget):
    with pytest.raises(ValueError, match='budget: B_max'):
        build(budget=budget)


def test_tight_budget_starts_where_the_search_can_move():
    """init_margin (0.1) larger than the room above the cheapest configuration: the
    start is clamped strictly inside, not one-hot on the cheapest candidate."""
    lo, _ = build()[0].space.bits_range()
    model, _ = build(budget=lo + 0.02, theta_init='feasible')
    e = model.expected_bits().item()
    assert lo < e < lo + 0.02 and e == pytest.approx(lo + 0.01, abs=1e-4)
    for p in model.probs():
        assert float(p.max()) < 0.999  # not one-hot: Prob-1 and E have gradients
    with pytest.raises(ValueError, match='is the cheapest configuration'):
        build(budget=lo, theta_init='feasible')


def test_layer_costs_of_a_search_are_those_of_its_written_configuration():
    """What a BOPs report of a search config counts: the file's configuration."""
    from bpnas_mm.bops import summarize
    model, _ = build(budget=3.2)
    mp = model.export()
    costs = model.layer_costs()  # probed again, with the mixed layers at the choice
    assert summarize(costs).to_dict() == mp.extra['summary']
    assert {c.name: (c.w_bits, c.a_bits) for c in costs} == {
        n: (v['w_bits'], v['a_bits']) for n, v in mp.layers.items()}
