"""BPNAS under several limits: one barrier each, a file inside all of them."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmpretrain.structures import DataSample

from bpnas_mm.engine import BPNASOptimWrapperConstructor
from bpnas_mm.search.constraints import MB

TINY = Config.fromfile('configs/bpnas/bpnas_resnet8_tiny_search.py')


def _build(budget, **search):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    return MODELS.build(dict(TINY.model.to_dict(), budget=budget,
                             search=dict(dict(mode='composite', mu=0.1), **search)))


def _weight_mb_between(model, frac):
    lo, hi = model.space.range_of('avg_w_bits')
    return (lo + frac * (hi - lo)) * model.space.total_params / MB


def test_search_under_bits_and_size_ends_inside_both():
    plain = _build(3.6)
    limit = _weight_mb_between(plain, 0.3)
    model = _build(dict(avg_bits=3.6, weight_mb=limit), mu_scale=dict(weight_mb=2.0))
    states = model.mutator.snapshot().constraints
    assert set(states) == {'avg_bits', 'weight_mb'}
    assert states['weight_mb']['expected'] <= limit  # the feasible start is inside both
    assert states['avg_bits']['expected'] <= 3.6
    optim = BPNASOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        arch_params=dict(optimizer=dict(type='Adam', lr=0.1))))(model)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(3):
        data = dict(inputs=[torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8)
                            for _ in range(4)],
                    data_samples=[DataSample().set_gt_label(int(i))
                                  for i in torch.randint(0, 10, (4,), generator=g)])
        logs = model.train_step(dict(train=data, search=data), optim)
        assert torch.isfinite(logs['loss_barrier']) and torch.isfinite(logs['loss_barrier_weight_mb'])
    # the size barrier is Eq. 12 in weight bits, weighted by mu * mu_scale
    from bpnas_mm.algorithms.losses import barrier_penalty
    probs = model.probs()
    e_w = model.space.expected_w_bits(probs)
    c = next(c for c in model.constraints if c.name == 'weight_mb')
    assert model.arch_loss(probs)['loss_barrier_weight_mb'].item() == pytest.approx(
        barrier_penalty(e_w, c.bound, 2.0 * model.mu, 0.02).item())
    mp = model.export()
    cons = mp.extra['constraints']
    assert cons['weight_mb']['inside'] and cons['avg_bits']['inside'] and mp.extra['inside_budget']
    assert cons['weight_mb']['value'] <= limit and cons['weight_mb']['slack'] >= 0
    assert cons['weight_mb']['value'] == pytest.approx(mp.totals().weight_mb)  # the counter's


def test_bad_limit_settings_are_refused_when_built():
    with pytest.raises(ValueError, match=r"search.mu_scale: \['w_comp'\] are not limits"):
        _build(dict(avg_bits=3.6), mu_scale=dict(w_comp=1.0))
    with pytest.raises(ValueError, match=r"loss='cost'.*use loss='barrier'"):
        _build(dict(avg_bits=3.6, w_comp=8.0), loss='cost')
    apart = [(2, 8), (4, 3), (8, 8)]  # the lightest weights are not the fewest BOPs
    with pytest.raises(ValueError, match=r'no configuration found inside all limits together'
                                         r'.*avg_bits alone reaches \[3\.464'):
        _build_with(apart, dict(avg_bits=3.5, avg_w_bits=2.5))  # each alone is reachable
    _build_with(apart, dict(avg_bits=3.5))
    _build_with(apart, dict(avg_w_bits=2.5))


def _build_with(candidates, budget):
    init_default_scope('mmpretrain')
    return MODELS.build(dict(TINY.model.to_dict(), candidates=candidates, budget=budget))
