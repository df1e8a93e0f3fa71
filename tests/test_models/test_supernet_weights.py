"""From search to retrain without restating anything: the searched file carries
the search's settings, and the supernet's weights seed exactly the network the
search evaluated."""
import json

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import MODELS, init_default_scope
from mmpretrain.structures import DataSample

from bpnas_mm.engine import BPNASOptimWrapperConstructor
from bpnas_mm.export import save_mixed_precision
from bpnas_mm.models import QuantModel
from bpnas_mm.utils.user_files import InputError

TINY = Config.fromfile('configs/bpnas/bpnas_resnet8_tiny_search.py')


def _searched(tmp_path, steps=3):
    """A tiny search run a few steps: its file and its checkpoint."""
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(dict(TINY.model.to_dict(), budget=3.2,
                              search=dict(mode='composite', theta_init='uniform')))
    optim = BPNASOptimWrapperConstructor(dict(
        architecture=dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9)),
        arch_params=dict(optimizer=dict(type='Adam', lr=0.2))))(model)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        data = dict(inputs=[torch.randint(0, 256, (3, 16, 16), generator=g, dtype=torch.uint8)
                            for _ in range(4)],
                    data_samples=[DataSample().set_gt_label(int(i))
                                  for i in torch.randint(0, 10, (4,), generator=g)])
        model.train_step(dict(train=data, search=data), optim)
    mp_path, ckpt = tmp_path / 'mixed_precision.json', tmp_path / 'epoch_1.pth'
    save_mixed_precision(model.export(), str(mp_path))
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    return model.eval(), str(mp_path), str(ckpt)


def _retrain(mp_path, ckpt=None, **settings):
    init_default_scope('mmpretrain')
    model = QuantModel(TINY.architecture.to_dict(), mixed_precision=mp_path,
                       supernet_checkpoint=ckpt, **settings)
    model.init_weights()
    return model.eval()


def test_the_fixed_model_computes_what_the_supernet_evaluated(tmp_path):
    search, mp_path, ckpt = _searched(tmp_path)
    fixed = _retrain(mp_path, ckpt)  # quant, grouping and bops from the file
    x = torch.randn(2, 3, 16, 16)
    choice, _ = search.mutator.choice()
    with torch.no_grad(), search.mutator.applied(None, choice):
        want = search.architecture(x)
    with torch.no_grad():
        got = fixed.architecture(x)
    assert torch.equal(got, want)
    # the clips are the chosen candidates' (moved by the search, not fresh defaults)
    name = search.space.groups['backbone.layer2.0'][0]
    w_bits, a_bits = fixed.qlayers[name].w_bits, fixed.qlayers[name].a_bits
    mixed = search.architecture.get_submodule(name)
    assert torch.equal(fixed.qlayers[name].a_quant.alpha, mixed.a_quants[str(a_bits)].alpha)
    assert torch.equal(fixed.qlayers[name].w_quant.alpha, mixed.w_quants[str(w_bits)].alpha)
    assert fixed.qlayers[name].a_quant.is_calibrated
    assert type(fixed.qlayers[name]).__name__ in ('QConv2d', 'QLinear')
    assert fixed.grouping == list(TINY.model.grouping)
    assert fixed.bops_cfg['input_shape'] == (3, 16, 16)
    assert [n for n, m in fixed.qlayers.items() if m.fixed_precision] == ['backbone.conv1',
                                                                          'head.fc']


def test_a_retrain_config_that_disagrees_with_the_search_is_refused(tmp_path):
    _, mp_path, _ = _searched(tmp_path, steps=1)
    quant = TINY.model.quant.to_dict()
    assert _retrain(mp_path, quant=quant, grouping=TINY.model.grouping,
                    bops=TINY.model.bops.to_dict()).mixed_precision is not None  # agrees
    with pytest.raises(InputError, match=r"model.quant.a_init = 'max', but the search used "
                                         r"'mse'.*leave model.quant out"):
        _retrain(mp_path, quant=dict(quant, a_init='max'))
    with pytest.raises(InputError, match=r'model.grouping = .*but the search used'):
        _retrain(mp_path, grouping=[r'(backbone\.layer\d)\.'])
    with pytest.raises(InputError, match=r'model.bops.input_shape = \[3, 32, 32\], but the '
                                         r'search used \[3, 16, 16\]'):
        _retrain(mp_path, bops=dict(input_shape=(3, 32, 32)))


def test_a_supernet_needs_the_file_of_its_own_candidates(tmp_path):
    _, mp_path, ckpt = _searched(tmp_path, steps=1)
    data = json.load(open(mp_path))
    del data['candidates']
    json.dump(data, open(tmp_path / 'no_candidates.json', 'w'))
    with pytest.raises(InputError, match='needs the mixed-precision file its search wrote'):
        _retrain(str(tmp_path / 'no_candidates.json'), ckpt)
    # a file whose candidates are not the supernet's: the state does not fit
    data = json.load(open(mp_path))
    chosen = {tuple(v[k] for k in ('w_bits', 'a_bits')) for v in data['groups'].values()}
    data['candidates'] = [list(c) for c in sorted(chosen)] + [[5, 5]]
    json.dump(data, open(tmp_path / 'other.json', 'w'))
    with pytest.raises(InputError, match='checkpoint of another model'):
        _retrain(str(tmp_path / 'other.json'), ckpt)
