"""The mixed-precision file: round trip, validation against the model."""
import copy
import json

import pytest

from bpnas_mm.export import (MixedPrecision, from_groups, load_mixed_precision,
                             save_mixed_precision)
from bpnas_mm.models import QuantModel
from bpnas_mm.utils.user_files import InputError

FIXED = [dict(layers=['backbone.conv1', 'head.fc'], w_bits=8, a_bits=8)]
GROUPING = [r'(backbone\.layer\d\.\d+)\.']


def _model(arch):
    return QuantModel(arch, quant=dict(w_bits=4, a_bits=4, fixed=FIXED), grouping=GROUPING)


def _mp_for(model, bits=(3, 3)):
    groups = {g: names for g, names in model.groups.items() if g.startswith('backbone.layer')}
    fixed = {n: (8, 8) for n in ('backbone.conv1', 'head.fc')}
    single = {g: [g] for g in fixed}
    return from_groups({g: bits for g in groups}, {**groups, **single}, fixed=fixed,
                       source='test')


def test_round_trip_and_apply(tmp_path, tiny_classifier):
    model = _model(tiny_classifier)
    assert len(model.groups) == 11  # stem, 9 BasicBlocks, fc
    mp = _mp_for(model, (2, 4))
    path = save_mixed_precision(mp, tmp_path / 'mp.json')
    assert not list(tmp_path.glob('*.tmp'))
    loaded = load_mixed_precision(path)
    assert loaded.layers == mp.layers and loaded.groups == mp.groups
    model.apply_mixed_precision(path)
    q = model.quant_summary()
    assert q['backbone.layer2.1.conv2'] == (2, 4, False)
    assert q['backbone.conv1'] == (8, 8, True)


def test_file_must_match_the_model(tmp_path, tiny_classifier):
    model = _model(tiny_classifier)
    mp = _mp_for(model)
    del mp.layers['backbone.layer1.0.conv1']
    mp.layers['backbone.layer7.0.conv1'] = dict(w_bits=2, a_bits=2)
    with pytest.raises(InputError) as e:
        model.apply_mixed_precision(mp)
    assert "1 layers the model does not have (e.g. ['backbone.layer7.0.conv1'])" in str(e.value)
    assert "1 model layers missing from the file (e.g. ['backbone.layer1.0.conv1'])" in str(e.value)


def test_fixed_layer_conflict(tiny_classifier):
    model = _model(tiny_classifier)
    mp = _mp_for(model)
    mp.layers['backbone.conv1'] = dict(w_bits=4, a_bits=4)
    with pytest.raises(InputError, match="'backbone.conv1' is fixed at"):
        model.apply_mixed_precision(mp)


def test_the_file_and_the_config_must_fix_the_same_layers(tiny_classifier):
    """A layer the search kept fixed must be fixed in the retrain config too (else it
    silently turned into a searched layer and the budget's accounting changed)."""
    mp = _mp_for(_model(copy.deepcopy(tiny_classifier)))
    loose = QuantModel(copy.deepcopy(tiny_classifier), quant=dict(w_bits=4, a_bits=4),
                       grouping=GROUPING)
    with pytest.raises(InputError, match=r"2 layers are fixed in the file but not in "
                                         r"quant.fixed \(e.g. \['backbone.conv1', 'head.fc'\]\)"):
        loose.apply_mixed_precision(mp)
    mp.layers['head.fc'] = dict(w_bits=8, a_bits=8, fixed=False)  # searched in the file
    with pytest.raises(InputError, match=r"1 layers are fixed in quant.fixed but not in the "
                                         r"file \(e.g. \['head.fc'\]\)"):
        _model(copy.deepcopy(tiny_classifier)).apply_mixed_precision(mp)


@pytest.mark.parametrize('content,match', [
    ('{not json', 'not valid JSON'),
    (json.dumps({'format': 'other'}), 'not a bpnas_mm mixed-precision file'),
    (json.dumps({'format': 'bpnas_mm.mixed_precision', 'version': 9}), 'unsupported version'),
    (json.dumps({'format': 'bpnas_mm.mixed_precision', 'version': 1, 'layers': {}}),
     'non-empty mapping'),
    (json.dumps({'format': 'bpnas_mm.mixed_precision', 'version': 1,
                 'layers': {'a': {'w_bits': 0, 'a_bits': 4}}}), r"layers\['a'\].w_bits"),
    (json.dumps({'format': 'bpnas_mm.mixed_precision', 'version': 1,
                 'layers': {'a': {'w_bits': 4}}}), 'must have "w_bits" and "a_bits"'),
])
def test_bad_files(tmp_path, content, match):
    path = tmp_path / 'bad.json'
    path.write_text(content)
    with pytest.raises(InputError, match=match) as err:
        load_mixed_precision(path)
    assert str(err.value).startswith(f'mixed-precision file: {path}')  # names the file


def test_missing_file():
    with pytest.raises(InputError, match='mixed-precision file: file not found: /nonexistent/'):
        load_mixed_precision('/nonexistent/mp.json')


def test_extra_fields_are_kept(tmp_path):
    mp = MixedPrecision(layers={'a': dict(w_bits=2, a_bits=3)}, extra={'budget_avg_bits': 3.0})
    save_mixed_precision(mp, tmp_path / 'x.json')
    assert load_mixed_precision(tmp_path / 'x.json').extra['budget_avg_bits'] == 3.0
