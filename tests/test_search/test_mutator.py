"""PrecisionMutator: the one owner of theta; the hooks and the file agree with it."""
import json
from pathlib import Path
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from bpnas_mm.engine.hooks import ArchLoggingHook
from bpnas_mm.registry import MODELS

TINY = Path(__file__).parents[2] / 'configs' / 'bpnas' / 'bpnas_resnet8_tiny_search.py'


def _model(**search):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    return MODELS.build(dict(Config.fromfile(str(TINY)).model.to_dict(), budget=3.0,
                             search=dict(theta_init='uniform', **search)))


def _over_budget(model):
    with torch.no_grad():
        for theta in model.mutator.arch_params.values():
            theta[7] = 5.0  # (8, 4) everywhere: 5.66 bits > 3
    return model


def _layers(model):
    return [layer for g in model.space.names for layer in model.mutator._layers[g]]


def test_applied_sets_the_layers_and_always_resets_them():
    model = _model()
    mutator = model.mutator
    probs = mutator.probs()
    choice = {g: 1 for g in model.space.names}
    with mutator.applied(probs, choice):
        assert all(layer.arch_choice == 1 for layer in _layers(model))
        assert all(layer.arch_probs is not None for layer in _layers(model))
    with pytest.raises(RuntimeError, match='inside'):
        with mutator.applied(probs, choice):
            raise RuntimeError('inside')
    assert all(layer.arch_choice is None and layer.arch_probs is None
               for layer in _layers(model))


def test_sample_follows_the_probabilities():
    model = _model()
    with torch.no_grad():
        for i, theta in enumerate(model.mutator.arch_params.values()):
            theta[i] = 50.0  # group i: almost surely candidate i
    assert model.mutator.sample() == {g: i for i, g in enumerate(model.space.names)}
    uniform = _model()
    draws = [uniform.mutator.sample()[uniform.space.names[0]] for _ in range(400)]
    counts = torch.bincount(torch.tensor(draws), minlength=8)
    assert counts.min() > 20  # 50 expected each


@pytest.mark.parametrize('repair', [True, False])
def test_logged_bits_are_the_written_files(tmp_path, repair):
    """ArchLoggingHook logs the configuration the file gets (before the mutator it
    repaired on its own and logged 3 bits while a repair=False file had 5.66)."""
    model = _over_budget(_model(repair=repair))
    runner = mock.MagicMock(work_dir=str(tmp_path), iter=9, epoch=0, model=model)
    ArchLoggingHook(interval=1).log(runner)
    record = json.loads((tmp_path / 'arch_history.jsonl').read_text())
    mp = model.export()
    assert record['sampled_bits'] == mp.extra['avg_bits']
    assert record['repaired'] == mp.extra['repaired'] == repair
    assert record['probs'] == mp.extra['probabilities']
    assert record['expected_bits'] == mp.extra['expected_bits']


def test_checkpoints_from_before_the_mutator_still_load():
    model = _over_budget(_model())
    state = model.state_dict()
    old = {(k[len('mutator.'):] if k.startswith('mutator.') else k): v for k, v in state.items()}
    assert any(k.startswith('arch_params.') for k in old)
    fresh = _model()
    fresh.load_state_dict(old, strict=True)
    assert all(torch.equal(a, b) for a, b in zip(fresh.mutator.arch_params.values(),
                                                 model.mutator.arch_params.values()))
