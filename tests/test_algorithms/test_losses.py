"""Barrier penalty and Prob-1 against the closed forms of the supplementary."""
import math

import pytest
import torch

from bpnas_mm.algorithms.losses import (barrier_grad, barrier_penalty, cost_loss,
                                        prob1_regularizer)


@pytest.mark.parametrize('e', [0.5, 2.0, 2.9, 3.4, 3.97])
@pytest.mark.parametrize('mu', [0.05, 0.5])
def test_barrier_gradient_is_eq22(e, mu):
    b_max = 4.0
    x = torch.tensor(e, dtype=torch.float64, requires_grad=True)
    loss = barrier_penalty(x, b_max, mu, delta=0.02)
    loss.backward()
    assert loss.item() == pytest.approx(-mu * math.log(math.log(b_max + 1 - e)))
    assert x.grad.item() == pytest.approx(barrier_grad(e, b_max, mu), rel=1e-9)
    assert x.grad.item() == pytest.approx(mu / (math.log(b_max + 1 - e) * (b_max + 1 - e)))


@pytest.mark.parametrize('e', [2.99, 3.0, 3.5, 4.05, 8.0, 32.0, 1e6])
def test_barrier_finite_and_pushing_back_outside(e):
    b_max, mu, delta = 3.0, 0.1, 0.02
    x = torch.tensor(e, dtype=torch.float64, requires_grad=True)
    loss = barrier_penalty(x, b_max, mu, delta)
    loss.backward()
    assert math.isfinite(loss.item()) and math.isfinite(x.grad.item())
    assert x.grad.item() == pytest.approx(barrier_grad(b_max - delta, b_max, mu))
    assert x.grad.item() > 0  # descent lowers E


def test_barrier_continuous_at_the_joint():
    b_max, mu, delta = 3.0, 0.2, 0.05
    e0 = b_max - delta
    left = barrier_penalty(torch.tensor(e0 - 1e-9, dtype=torch.float64), b_max, mu, delta)
    right = barrier_penalty(torch.tensor(e0 + 1e-9, dtype=torch.float64), b_max, mu, delta)
    assert left.item() == pytest.approx(right.item(), abs=1e-6)


def test_barrier_small_inside_large_near_budget():
    b_max, mu = 4.0, 0.05
    far = barrier_penalty(torch.tensor(1.0), b_max, mu).item()
    near = barrier_penalty(torch.tensor(3.97), b_max, mu).item()
    assert abs(far) < 0.02 and near > 0.1


def test_barrier_rejects_bad_delta():
    with pytest.raises(ValueError, match='delta'):
        barrier_penalty(torch.tensor(1.0), 3.0, 0.1, delta=0.0)


def test_prob1_zero_at_one_hot_positive_otherwise():
    one_hot = [torch.tensor([0.0, 1.0, 0.0]), torch.tensor([1.0, 0.0])]
    assert prob1_regularizer(one_hot).item() == 0.0
    assert prob1_regularizer([torch.full((4,), 0.25)]).item() == pytest.approx(0.75 ** 4)


def test_prob1_gradient_is_eq25():
    torch.manual_seed(0)
    probs = [torch.softmax(torch.randn(5, dtype=torch.float64), 0).requires_grad_(),
             torch.softmax(torch.randn(3, dtype=torch.float64), 0).requires_grad_()]
    prob1_regularizer(probs).backward()
    for p in probs:
        for j in range(len(p)):
            others = torch.cat([p[:j], p[j + 1:]]).detach()
            assert p.grad[j].item() == pytest.approx(-torch.prod(1 - others).item())


def test_cost_loss_is_linear():
    x = torch.tensor(3.5, requires_grad=True)
    cost_loss(x, 0.3).backward()
    assert x.grad.item() == pytest.approx(0.3)
