"""One supernet for many budgets: theta-only steps, a supernet's weights without its
theta, and every budget checked on the supernet."""
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope

from bpnas_mm.engine import BPNASOptimWrapperConstructor
from bpnas_mm.utils.user_files import InputError

from .tiny_data import batch

TINY = Config.fromfile('configs/bpnas/bpnas_resnet8_tiny_search.py')


def build(budget=3.0, theta_init='feasible', seed=0, **extra):
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    model = MODELS.build(dict(TINY.model.to_dict(), budget=budget,
                              search=dict(mu=0.1, theta_init=theta_init), **extra))
    optim = BPNASOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        arch_params=dict(optimizer=dict(type='Adam', lr=0.05))))(model)
    return model, optim


def _theta(model):
    return torch.cat([p.detach().flatten() for p in model.arch_params.parameters()]).clone()


def _weights(model):
    """Every trained weight and clip of the task model (not BN's running statistics)."""
    return {k: v.detach().clone() for k, v in model.architecture.named_parameters()}


def test_a_theta_only_step_moves_theta_and_no_weight_or_clip():
    model, optim = build()
    model.train()
    model.train_step(dict(train=batch(0), search=batch(1)), optim)  # momentum buffers exist
    w0, theta0 = _weights(model), _theta(model)
    logs = model.train_step(dict(train=None, search=batch(2)), optim)
    assert all(torch.equal(v, w0[k]) for k, v in _weights(model).items())
    assert not torch.equal(_theta(model), theta0)
    assert 'loss' not in logs  # no W step, no task loss of one
    assert torch.isfinite(logs['theta_task_loss']) and torch.isfinite(logs['loss_barrier'])


def test_a_step_without_any_batch_is_refused():
    model, optim = build()
    with pytest.raises(ValueError, match='neither a training nor a search batch'):
        model.train_step(dict(train=None, search=None), optim)


def test_supernet_checkpoint_gives_weights_and_clips_but_not_theta(tmp_path):
    trained, optim = build(budget=4.0, theta_init='uniform')
    trained.train()
    for step in range(3):  # W steps: weights and clips move; clips get calibrated
        trained.train_step(dict(train=batch(step), search=None), optim)
    with torch.no_grad():
        for p in trained.arch_params.parameters():
            p.add_(torch.arange(p.numel(), dtype=p.dtype))  # a theta that must not travel
    path = str(tmp_path / 'supernet.pth')
    torch.save(dict(state_dict=trained.state_dict()), path)

    fresh, _ = build(budget=3.0)
    start = _theta(fresh)  # the feasible start at B_max = 3
    shared, _ = build(budget=3.0, supernet_checkpoint=path, seed=1)
    shared.init_weights()
    got, want = shared.architecture.state_dict(), trained.architecture.state_dict()
    assert set(got) == set(want)
    assert all(torch.equal(got[k], want[k]) for k in want)  # weights, clips, BN, calibration
    assert torch.equal(_theta(shared), start)
    assert shared.expected_bits().item() < 3.0


def test_supernet_checkpoint_of_other_candidates_is_refused(tmp_path):
    other, _ = build(candidates=[(2, 4), (4, 4), (8, 8)], budget=5.0)
    path = str(tmp_path / 'other.pth')
    torch.save(dict(state_dict=other.state_dict()), path)
    model, _ = build(supernet_checkpoint=path)
    with pytest.raises(InputError, match='model.supernet_checkpoint: .* another model'):
        model.init_weights()


def test_supernet_checkpoint_and_float_checkpoint_are_exclusive(tmp_path):
    path = str(tmp_path / 'x.pth')
    torch.save(dict(state_dict={}), path)
    with pytest.raises(ValueError, match='not both'):
        build(supernet_checkpoint=path, float_checkpoint=path)


def test_check_budget_is_the_check_of_a_build():
    model, _ = build()
    lo, hi = model.space.bits_range()
    assert [c.name for c in model.check_budget(hi)] == ['avg_bits']
    assert [c.name for c in model.check_budget(dict(avg_bits=3.5, weight_mb=0.05))] == [
        'avg_bits', 'weight_mb']
    with pytest.raises(ValueError, match=r'--budgets 9: .*'):
        model.check_budget(9.0, field='--budgets 9')
    with pytest.raises(ValueError) as refused:
        model.check_budget(lo)  # the cheapest: a feasible start could not move
    with pytest.raises(ValueError) as built:
        build(budget=lo)
    assert str(refused.value) == str(built.value)
