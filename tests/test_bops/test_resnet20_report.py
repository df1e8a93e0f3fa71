"""The BOPs report of ResNet20 equals a count by hand."""
import pytest

from bpnas_mm.bops import summarize
from bpnas_mm.bops.report import build_report, format_report
from bpnas_mm.models import QuantModel

FIXED = [dict(layers=['backbone.conv1', 'head.fc'], w_bits=8, a_bits=8)]
K33 = 9


def hand_macs():
    """Per-layer MACs of ResNet20 at 32x32, counted by hand."""
    macs = {'backbone.conv1': 3 * 16 * K33 * 32 * 32}
    for stage, (cin, cout, hw) in enumerate([(16, 16, 32), (16, 32, 16), (32, 64, 8)], 1):
        for block in range(3):
            c_in = cin if block == 0 else cout
            macs[f'backbone.layer{stage}.{block}.conv1'] = c_in * cout * K33 * hw * hw
            macs[f'backbone.layer{stage}.{block}.conv2'] = cout * cout * K33 * hw * hw
    macs['head.fc'] = 64 * 10
    return macs


def test_per_layer_macs_and_params_equal_hand_count(tiny_classifier):
    model = QuantModel(tiny_classifier, quant=dict(w_bits=3, a_bits=3, fixed=FIXED),
                       grouping=[r'(backbone\.layer\d\.\d+)\.'])
    costs = {c.name: c for c in model.layer_costs()}
    assert {n: c.macs for n, c in costs.items()} == hand_macs()
    assert costs['backbone.layer2.0.conv1'].params == 16 * 32 * 9
    assert costs['head.fc'].params == 640  # bias not counted


def test_paper_table4_bmax3_totals(tiny_classifier):
    """Paper Table 4, B_max = 3: blocks 5 and 6 at (2, 4), the rest (3, 3)."""
    model = QuantModel(tiny_classifier, quant=dict(w_bits=3, a_bits=3, fixed=FIXED),
                       grouping=[r'(backbone\.layer\d\.\d+)\.'])
    for name in ('backbone.layer2.1', 'backbone.layer2.2'):
        for layer in model.groups[name]:
            model.qlayers[layer].w_bits, model.qlayers[layer].a_bits = 2, 4
    s = summarize(model.layer_costs(), include_fixed=False)
    macs = hand_macs()
    body = {n: m for n, m in macs.items() if n not in ('backbone.conv1', 'head.fc')}
    assert s.macs == sum(body.values()) == 40_108_032
    bops = sum(m * (8 if n.startswith(('backbone.layer2.1', 'backbone.layer2.2')) else 9)
               for n, m in body.items())
    assert s.bops == bops == 351_535_104
    assert s.avg_bits == pytest.approx((bops / 40_108_032) ** 0.5)
    assert s.b_comp == pytest.approx(116.83, abs=0.01)  # the paper prints 116.89x
    with_fixed = summarize(model.layer_costs(), include_fixed=True)
    assert with_fixed.bops == bops + 64 * (macs['backbone.conv1'] + macs['head.fc'])


def test_report_has_block_table_and_totals(tiny_classifier):
    model = QuantModel(tiny_classifier, quant=dict(w_bits=4, a_bits=4, fixed=FIXED),
                       grouping=[r'(backbone\.layer\d\.\d+)\.'])
    report = build_report(model.layer_costs(), include_fixed=False,
                          block_types={'backbone.layer1.0': 'BasicBlock'})
    assert list(report['blocks'])[:2] == ['backbone.conv1', 'backbone.layer1.0']
    block = report['blocks']['backbone.layer1.0']
    assert block['params'] == 4608 and block['macs'] == 4_718_592
    assert (block['w_bits'], block['a_bits'], block['type']) == (4, 4, 'BasicBlock')
    assert report['summary']['avg_bits'] == pytest.approx(4.0)
    text = format_report(report)
    assert 'B-Comp 64.00x' in text and 'fixed-precision layers not counted' in text
