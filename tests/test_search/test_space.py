"""Search space arithmetic: Eq. 10 expected cost, budget checks, repair."""
import math

import pytest
import torch

from bpnas_mm.bops import LayerCost
from bpnas_mm.search.space import SearchSpace

CANDS = [(2, 3), (2, 4), (3, 3), (3, 4), (4, 4), (4, 6), (6, 4), (8, 4)]


def _space(include_fixed=False):
    costs = [LayerCost('stem', 'conv', 50, 5, 8, 8, fixed=True),
             LayerCost('a.0', 'conv', 100, 10, 4, 4), LayerCost('a.1', 'conv', 300, 10, 4, 4),
             LayerCost('b.0', 'conv', 200, 10, 4, 4), LayerCost('fc', 'linear', 10, 10, 8, 8,
                                                                 fixed=True)]
    groups = {'stem': ['stem'], 'a': ['a.0', 'a.1'], 'b': ['b.0'], 'fc': ['fc']}
    return SearchSpace(costs, groups, CANDS, include_fixed=include_fixed)


def test_groups_skip_fixed_layers():
    s = _space()
    assert s.names == ['a', 'b'] and s.group_macs == {'a': 400, 'b': 200}
    assert s.total_macs == 600


@pytest.mark.parametrize('include_fixed', [False, True])
def test_expected_bits_closed_form(include_fixed):
    s = _space(include_fixed)
    pa = torch.softmax(torch.randn(8, dtype=torch.float64), 0)
    pb = torch.softmax(torch.randn(8, dtype=torch.float64), 0)
    cost = torch.tensor([w * a for w, a in CANDS], dtype=torch.float64)
    fixed_bops = (50 + 10) * 64 if include_fixed else 0
    macs = 600 + (60 if include_fixed else 0)
    expected = math.sqrt((fixed_bops + 400 * float(pa @ cost) + 200 * float(pb @ cost)) / macs)
    assert s.expected_bits([pa, pb]).item() == pytest.approx(expected)


def test_one_hot_expected_equals_exact():
    s = _space(True)
    for ja, jb in [(0, 7), (4, 4), (6, 1)]:
        probs = [torch.eye(8)[ja], torch.eye(8)[jb]]
        assert s.expected_bits(probs).item() == pytest.approx(s.avg_bits_of({'a': ja, 'b': jb}))


def test_uniform_start_is_outside_a_3_bit_budget():
    s = _space()
    uniform = [torch.full((8,), 1 / 8)] * 2
    assert s.expected_bits(uniform).item() == pytest.approx(math.sqrt(131 / 8))  # 4.047


def test_feasible_start_ties_the_candidates_that_fit_the_budget():
    s = _space()
    theta = s.feasible_theta(2.9, hinge_bits=3.0)
    p = torch.softmax(theta, 0)
    assert s.expected_bits([p, p]).item() == pytest.approx(2.9, abs=1e-6)
    cost = [w * a for w, a in CANDS]
    fits = [j for j, c in enumerate(cost) if c <= 9]  # (2,3), (2,4), (3,3)
    assert fits == [0, 1, 2] and torch.all(theta[fits] == 0)
    dear = sorted(set(range(8)) - set(fits), key=cost.__getitem__)
    assert all(theta[j] < 0 for j in dear)
    assert all(theta[i] >= theta[j] for i, j in zip(dear, dear[1:]))
    # closed form of the tilt: theta_j = -beta * (c_j - 9) / (32 - 9)
    beta = -float(theta[7])
    assert theta[3].item() == pytest.approx(-beta * 3 / 23, rel=1e-5)


def test_feasible_start_falls_back_to_the_cheapest_tilt():
    s = _space(include_fixed=True)  # fixed 8-bit layers eat most of a 3.4-bit budget
    theta = s.feasible_theta(3.4, hinge_bits=3.4)
    p = torch.softmax(theta, 0)
    assert s.expected_bits([p, p]).item() == pytest.approx(3.4, abs=1e-6)
    assert torch.argmax(theta) == 0 and torch.all(theta[1:] < 0)
    linear = _space().feasible_theta(2.9)  # no hinge: the linear tilt, cheapest first
    assert torch.argmax(linear) == 0 and torch.all(linear[1:] <= linear[:-1])
    assert torch.equal(s.feasible_theta(5.0, hinge_bits=5.0), torch.zeros(8))


def test_budget_range_checked():
    s = _space()
    lo, hi = s.bits_range()
    assert lo == pytest.approx(math.sqrt(6)) and hi == pytest.approx(math.sqrt(32))
    assert s.check_budget(3.0) == 3.0
    with pytest.raises(ValueError, match=r'budget: B_max = 2.0 average bits is outside'):
        s.check_budget(2.0)
    with pytest.raises(ValueError, match='outside what the candidates can reach'):
        s.check_budget(6.0)


def test_repair_is_deterministic_and_lands_inside():
    s = _space()
    probs = [torch.softmax(torch.tensor([0., 0, 0, 0, 0, 0, 0, 5.]), 0),
             torch.softmax(torch.tensor([0., 0, 0, 0, 0, 0, 4., 0]), 0)]
    choice = s.argmax(probs)
    assert choice == {'a': 7, 'b': 6} and s.avg_bits_of(choice) > 3.0
    fixed, moves = s.repair(choice, probs, 3.0)
    assert s.avg_bits_of(fixed) <= 3.0 and moves
    assert s.repair(choice, probs, 3.0) == (fixed, moves)
    inside, none = s.repair({'a': 0, 'b': 0}, probs, 3.0)
    assert inside == {'a': 0, 'b': 0} and none == []


def test_grouping_rules_checked():
    from bpnas_mm.search import assign_groups
    groups = assign_groups(['b.layer1.0.c1', 'b.layer1.0.c2', 'b.layer1.1.c1', 'fc'],
                           [r'(b\.layer\d\.\d+)\.'])
    assert groups == {'b.layer1.0': ['b.layer1.0.c1', 'b.layer1.0.c2'],
                      'b.layer1.1': ['b.layer1.1.c1'], 'fc': ['fc']}
    with pytest.raises(ValueError, match='match no quantized layer'):
        assign_groups(['fc'], [r'(neck\.\d)'])
    with pytest.raises(ValueError, match='exactly one capture group'):
        assign_groups(['fc'], [r'fc'])
    with pytest.raises(ValueError, match='not a regular expression'):
        assign_groups(['fc'], [r'(fc'])
