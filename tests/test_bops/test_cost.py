"""Closed-form BOPs, average bits and compression ratios (Eq. 3-4)."""
import math

import pytest
import torch
from torch import nn

from bpnas_mm.bops import (CostTotals, LayerCost, conv_macs, linear_macs, summarize,
                          summarize_config)


def test_conv_macs_hand_count_grouped_strided():
    # 6 -> 8 channels, groups 2, 3x3, stride 2 on 9x9 (pad 1): out 5x5
    conv = nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2)
    out = conv(torch.zeros(1, 6, 9, 9))
    assert out.shape[-2:] == (5, 5)
    assert conv_macs(conv, out) == 8 * 5 * 5 * (6 // 2) * 9  # 5400


def test_linear_macs_counts_rows():
    fc = nn.Linear(12, 5)
    assert linear_macs(fc, torch.zeros(7, 12)) == 7 * 12 * 5
    assert linear_macs(fc, torch.zeros(2, 3, 12)) == 6 * 12 * 5


def test_summary_closed_form():
    layers = [LayerCost('a', 'conv', macs=100, params=10, w_bits=2, a_bits=4),
              LayerCost('b', 'conv', macs=300, params=30, w_bits=4, a_bits=4),
              LayerCost('first', 'conv', macs=50, params=5, w_bits=8, a_bits=8, fixed=True)]
    s = summarize(layers, include_fixed=False)
    bops = 100 * 8 + 300 * 16
    assert s.bops == bops and s.macs == 400 and s.params == 40
    assert s.avg_bits == pytest.approx(math.sqrt(bops / 400))
    assert s.b_comp == pytest.approx(1024 * 400 / bops)
    assert s.w_comp == pytest.approx(32 * 40 / (10 * 2 + 30 * 4))
    assert s.w_bits_mean == pytest.approx(140 / 40)
    assert s.a_bits_mean == pytest.approx(4.0)
    s_all = summarize(layers, include_fixed=True)
    assert s_all.bops == bops + 50 * 64 and s_all.include_fixed is True


def test_uniform_bits_give_that_average():
    layers = [LayerCost(str(i), 'conv', macs=m, params=1, w_bits=3, a_bits=3)
              for i, m in enumerate([7, 100, 12345])]
    s = summarize(layers)
    assert s.avg_bits == pytest.approx(3.0)
    assert s.b_comp == pytest.approx(1024 / 9)  # 113.78x, the paper's W3A3 row


def test_nothing_to_count_is_an_error():
    with pytest.raises(ValueError, match='include_fixed'):
        summarize([LayerCost('a', 'conv', 1, 1, 8, 8, fixed=True)], include_fixed=False)


def test_a_configuration_summary_sets_each_group_and_keeps_fixed_layers():
    layers = [LayerCost('g1.a', 'conv', macs=100, params=10, w_bits=4, a_bits=4, group='g1'),
              LayerCost('g1.b', 'conv', macs=200, params=20, w_bits=4, a_bits=4, group='g1'),
              LayerCost('g2.a', 'linear', macs=300, params=30, w_bits=4, a_bits=4, group='g2'),
              LayerCost('stem', 'conv', macs=50, params=5, w_bits=8, a_bits=8, fixed=True,
                        group='g1')]
    s = summarize_config(layers, {'g1': (2, 3), 'g2': (8, 4)}, include_fixed=False)
    assert [(c.w_bits, c.a_bits) for c in s.layers] == [(2, 3), (2, 3), (8, 4), (8, 8)]
    assert s.counted.bops == 300 * 6 + 300 * 32 and s.counted.num_layers == 3
    assert s.all_layers.bops == s.counted.bops + 50 * 64
    assert s.counted.avg_bits == pytest.approx(math.sqrt((1800 + 9600) / 600))
    assert layers[0].w_bits == 4  # the input costs are left as they were
    assert CostTotals.from_dict(s.counted.to_dict()) == s.counted  # the file's form
