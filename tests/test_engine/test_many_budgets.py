"""The many-budgets driver's pieces: budget lists, the configs of each phase, the table."""
import pytest
from mmengine.config import Config

from bpnas_mm.engine.many_budgets import (BudgetResult, ManyBudgets, budgets_table,
                                          check_budgets, retrain_phase, theta_phase,
                                          weights_phase, with_avg_bits)
from bpnas_mm.utils.user_files import InputError


def _search_cfg():
    return Config(dict(
        work_dir='w', load_from='x.pth', resume=True,
        model=dict(type='bpnas_mm.BPNAS', budget=dict(avg_bits=3.0, weight_mb=0.2),
                   float_checkpoint='float.pth', search=dict(mode='composite')),
        train_cfg=dict(type='bpnas_mm.BPNASSearchLoop', max_epochs=6, warmup_epochs=2,
                       val_interval=2)))


def _retrain_cfg(**model):
    return Config(dict(
        model=dict(type='bpnas_mm.QuantModel', mixed_precision='paper.json', **model),
        train_cfg=dict(by_epoch=True, max_epochs=160, val_interval=5),
        param_scheduler=[dict(type='CosineAnnealingLR', T_max=160, by_epoch=True),
                         dict(type='LinearLR', end=5, by_epoch=True),
                         dict(type='MultiStepLR', end=160, by_epoch=False)],
        val_dataloader=dict(batch_size=1)))


@pytest.mark.parametrize('budgets,match', [
    ([], 'give one or more'), ([3, float('nan')], 'nan is not a finite number'),
    ([3, 3.0], '3 is given twice'), (['3'], "'3' is not a finite number")])
def test_bad_budget_lists_are_refused(budgets, match):
    with pytest.raises(InputError, match=match):
        check_budgets(budgets)


def test_budgets_keep_their_order():
    assert check_budgets([4, 2.5, 3]) == [4.0, 2.5, 3.0]


def test_a_budget_replaces_only_the_average_bit_limit():
    assert with_avg_bits(3.0, 4.5) == 4.5
    assert with_avg_bits(dict(avg_bits=3.0, weight_mb=0.2), 4.5) == dict(avg_bits=4.5,
                                                                         weight_mb=0.2)


def test_the_weights_phase_trains_w_from_uniform_theta_without_warm_up_or_resume():
    cfg = _search_cfg()
    c = weights_phase(cfg, 'w/supernet')
    assert c.train_cfg.steps == 'weights' and c.model.search.theta_init == 'uniform'
    assert c.model.search.mode == 'composite' and c.model.float_checkpoint == 'float.pth'
    assert c.train_cfg.warmup_epochs == 0 and c.train_cfg.val_begin == 7
    assert (c.work_dir, c.load_from, c.resume) == ('w/supernet', None, False)
    assert 'steps' not in cfg.train_cfg and cfg.train_cfg.warmup_epochs == 2  # a copy


def test_the_weights_phase_can_sample_paths_while_the_budgets_keep_the_configs_mode():
    cfg = _search_cfg()
    c = weights_phase(cfg, 'w/supernet', mode='sample')
    assert c.model.search == dict(mode='sample', theta_init='uniform')
    assert theta_phase(cfg, 3.0, 'sn.pth', 'w/b').model.search.mode == 'composite'


def test_a_theta_phase_starts_from_the_supernet_at_its_own_budget():
    c = theta_phase(_search_cfg(), 4.5, 'w/supernet/supernet.pth', 'w/budget_4.5')
    assert c.train_cfg.steps == 'theta' and c.experiment_name == 'budget_4.5'
    assert c.model.budget == dict(avg_bits=4.5, weight_mb=0.2)
    assert c.model.float_checkpoint is None
    assert c.model.supernet_checkpoint == 'w/supernet/supernet.pth'
    assert c.train_cfg.max_epochs == 6  # the same iterations as a full search


def test_theta_mu_replaces_the_barrier_schedule_of_the_theta_phases_only():
    cfg = _search_cfg()
    cfg.custom_hooks = [dict(type='bpnas_mm.ArchLoggingHook', interval=20),
                        dict(type='bpnas_mm.BarrierMuHook', start=0.05, end=0.2)]
    c = theta_phase(cfg, 3.0, 'sn.pth', 'w/b', mu=(0.01, 0.04))
    assert c.custom_hooks[1] == dict(type='bpnas_mm.BarrierMuHook', start=0.01, end=0.04)
    assert cfg.custom_hooks[1].start == 0.05  # a copy
    assert theta_phase(cfg, 3.0, 'sn.pth', 'w/b').custom_hooks[1].end == 0.2
    del cfg.custom_hooks[1]
    with pytest.raises(InputError, match='--theta-mu: the config has no bpnas_mm.BarrierMuHook'):
        theta_phase(cfg, 3.0, 'sn.pth', 'w/b', mu=(0.01, 0.04))


def test_a_retrain_starts_from_the_supernet_and_its_schedule_follows_the_epochs():
    c = retrain_phase(_retrain_cfg(), 3.0, 'w/budget_3/mixed_precision.json', 'sn.pth',
                      'w/budget_3/retrain', epochs=2)
    assert c.model.mixed_precision == 'w/budget_3/mixed_precision.json'
    assert c.model.supernet_checkpoint == 'sn.pth'
    assert c.train_cfg.max_epochs == 2 and c.train_cfg.val_begin == 3
    assert [s.get('T_max', s.get('end')) for s in c.param_scheduler] == [2, 5, 160]
    kept = retrain_phase(_retrain_cfg(), 3.0, 'mp.json', 'sn.pth', 'r')
    assert kept.train_cfg.max_epochs == 160 and kept.param_scheduler[0].T_max == 160


@pytest.mark.parametrize('own', [dict(float_checkpoint='float.pth'),
                                 dict(supernet_checkpoint='search/epoch_60.pth')])
def test_a_retrain_config_that_names_its_weights_keeps_them(own):
    c = retrain_phase(_retrain_cfg(**own), 3.0, 'mp.json', 'sn.pth', 'r', epochs=1)
    for key, value in own.items():
        assert c.model[key] == value
    assert c.model.get('supernet_checkpoint') in (None, own.get('supernet_checkpoint'))


def _result(b, bits, top1, retrained=None):
    return BudgetResult(avg_bits_limit=b, work_dir='w', file='f', avg_bits=bits,
                        expected_bits=bits, inside_budget=True, repaired=False,
                        constraints={}, metrics={'accuracy/top1': top1},
                        minutes=1.0, retrained=retrained or {}, retrain_minutes=0.5)


def test_the_table_has_a_retrained_column_only_when_something_was_retrained():
    done = ManyBudgets('sn.pth', 2.0, [_result(3, 2.95, 80.0)])
    assert 'retrained' not in budgets_table(done, 'accuracy/top1').splitlines()[0]
    done = ManyBudgets('sn.pth', 2.0, [_result(3, 2.95, 80.0, {'accuracy/top1': 82.5})])
    head, rule, row = budgets_table(done, 'accuracy/top1').splitlines()[:3]
    assert head.count('|') == rule.count('|') == row.count('|') == 9
    assert row == '| 3 | 2.9500 | yes | no | 2.9500 | 80 | 82.5 | 1.5 |'
