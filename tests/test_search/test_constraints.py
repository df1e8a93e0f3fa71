"""Several limits at once: closed forms of each expected cost and its gradient, the
limits' units, repair inside all of them, and infeasible combinations refused."""
import math

import pytest
import torch

from bpnas_mm.bops import LayerCost
from bpnas_mm.search.constraints import (MB, feasible_start, find_feasible, parse_budget)
from bpnas_mm.search.space import SearchSpace

CANDS = [(2, 3), (2, 4), (3, 3), (3, 4), (4, 4), (4, 6), (6, 4), (8, 4)]
#: the lightest weights cost more BOPs than the cheapest BOPs: limits that pull apart
APART = [(2, 8), (4, 3), (8, 8)]


def _space(cands=CANDS, include_fixed=False):
    costs = [LayerCost('stem', 'conv', 50, 5, 8, 8, fixed=True),
             LayerCost('a.0', 'conv', 100, 10, 4, 4), LayerCost('a.1', 'conv', 300, 30, 4, 4),
             LayerCost('b.0', 'conv', 200, 60, 4, 4)]
    groups = {'stem': ['stem'], 'a': ['a.0', 'a.1'], 'b': ['b.0']}
    return SearchSpace(costs, groups, cands, include_fixed=include_fixed)


def _apart():
    costs = [LayerCost('a', 'conv', 100, 10, 4, 4), LayerCost('b', 'conv', 100, 10, 4, 4)]
    return SearchSpace(costs, {'a': ['a'], 'b': ['b']}, APART)


@pytest.mark.parametrize('include_fixed', [False, True])
def test_expected_weight_bits_and_its_gradient_closed_form(include_fixed):
    s = _space(include_fixed=include_fixed)
    theta = [torch.randn(8, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    probs = [torch.softmax(t, 0) for t in theta]
    w = torch.tensor([w for w, _ in CANDS], dtype=torch.float64)
    fixed_w, params = (5 * 8, 105) if include_fixed else (0, 100)
    size = {'a': 40, 'b': 60}
    want = (fixed_w + 40 * float(probs[0] @ w) + 60 * float(probs[1] @ w)) / params
    e = s.expected_w_bits(probs)
    assert e.item() == pytest.approx(want) and s.total_params == params
    e.backward()
    for g, t, p in zip(('a', 'b'), theta, probs):  # dE/dtheta_k = size/P * p_k (w_k - p.w)
        p = p.detach()
        assert torch.allclose(t.grad, size[g] / params * p * (w - p @ w))
    one_hot = [torch.nn.functional.one_hot(torch.tensor(j), 8).double() for j in (7, 0)]
    assert s.expected_w_bits(one_hot).item() == pytest.approx(s.w_bits_of({'a': 7, 'b': 0}))
    assert s.range_of('avg_w_bits') == pytest.approx(
        ((fixed_w + 200) / params, (fixed_w + 800) / params))


def test_limits_in_their_units():
    s = _space()
    (bits,) = parse_budget(3.0, s)
    assert (bits.name, bits.kind, bits.bound) == ('avg_bits', 'avg_bits', 3.0)
    mb, = parse_budget(dict(weight_mb=300 / MB), s)  # 300 weight bits over 100 params
    assert mb.kind == 'avg_w_bits' and mb.bound == pytest.approx(3.0)
    assert mb.value(3.0) == pytest.approx(300 / MB) and mb.slack(2.0 * 100 / MB) > 0
    comp, = parse_budget(dict(w_comp=8.0), s)
    assert comp.bound == pytest.approx(4.0) and comp.value(4.0) == 8.0
    assert comp.slack(10.0) == 2.0  # W-Comp is a lower limit
    with pytest.raises(ValueError, match=r"budget: unknown limits \['flops'\]; allowed"):
        parse_budget(dict(avg_bits=3.0, flops=1.0), s)
    with pytest.raises(ValueError, match='weight_mb and w_comp limit the same thing'):
        parse_budget(dict(weight_mb=1.0, w_comp=8.0), s)
    with pytest.raises(ValueError, match=r'budget.weight_mb = 1e-06 MB is outside what the '
                                         r'candidates can reach for this model: \[2\.5e-05, 0\.0001'):
        parse_budget(dict(weight_mb=1e-6), s)
    with pytest.raises(ValueError, match=r'budget.avg_bits must be a finite number'):
        parse_budget(dict(avg_bits=float('nan'), weight_mb=1.0), s)


def test_repair_inside_two_limits_where_fixing_one_breaks_the_other():
    s = _apart()  # all (4,3): 3.46 bits, 4 w-bits; all (2,8): 4 bits, 2 w-bits
    probs = [torch.tensor([0.2, 0.5, 0.3])] * 2  # (4,3) is the likelier way down
    start = {'a': 2, 'b': 2}  # (8,8): 8 bits, 8 w-bits
    bits_only, _ = s.repair(start, probs, 3.8)
    assert bits_only == {'a': 1, 'b': 1}  # inside the bits, 4 w-bits: breaks the other
    both, moves = s.repair(start, probs, {'avg_bits': 3.8, 'avg_w_bits': 3.0})
    assert s.avg_bits_of(both) <= 3.8 and s.w_bits_of(both) <= 3.0 and moves
    assert sorted(both.values()) == [0, 1]  # one group each: (2,8) and (4,3)
    assert math.isclose(s.avg_bits_of(both), math.sqrt(14)) and s.w_bits_of(both) == 3.0
    # the same through the config's names, and the start is inside both, not one-hot
    constraints = parse_budget(dict(avg_bits=3.8, weight_mb=3.2 * 20 / MB), s)
    assert find_feasible(s, constraints) in ({'a': 0, 'b': 1}, {'a': 1, 'b': 0})
    theta = feasible_start(s, constraints, margin=0.1)
    p = [torch.softmax(theta[g], 0) for g in s.names]
    # inside both, by the margin where the slack allows (3.8 - 3.742: half of it)
    assert s.expected_bits(p) <= 3.8 - (3.8 - math.sqrt(14)) / 2 + 1e-6
    assert s.expected_w_bits(p) <= 3.2 - 0.1 + 1e-6
    assert max(float(q.max()) for q in p) < 0.999


def test_an_infeasible_pair_is_refused_with_each_range():
    s = _apart()  # <= 3.5 bits needs (4,3) everywhere (4 w-bits); <= 2.5 w-bits needs (2,8)
    with pytest.raises(ValueError, match=r'no configuration found inside all limits together '
                                         r'\(avg_bits <= 3.5 bits, avg_w_bits <= 2.5 bits\): '
                                         r'the configuration cheapest in avg_bits has '
                                         r'avg_w_bits 4.*avg_bits alone reaches \[3\.464, '
                                         r'8\] bits'):
        parse_budget(dict(avg_bits=3.5, avg_w_bits=2.5), s)


def test_the_start_tilts_every_group_alike_when_that_suffices():
    s = _space()
    constraints = parse_budget(dict(avg_bits=4.0, avg_w_bits=3.0), s)
    theta = feasible_start(s, constraints, margin=0.1)
    assert torch.equal(theta['a'], theta['b'])  # one shared tilt, no favourite configuration
    p = [torch.softmax(theta[g], 0) for g in s.names]
    assert s.expected_w_bits(p) == pytest.approx(2.9, abs=1e-6)  # the smallest tilt: on target
    assert s.expected_bits(p) <= 3.9 + 1e-6
    assert float(p[0].min()) > 1e-3  # still spread over every candidate
