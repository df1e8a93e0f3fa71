"""BOPs report: per-layer and per-block tables and totals, as text and JSON.

Columns follow the paper: Table 4 (block, type, params, FLOPs = MACs, w-bit,
a-bit) per block and per layer, and Table 1 (w-bits, a-bits, W-Comp, B-Comp,
average bits) for the totals.
"""
from typing import Dict, List, Optional

from .cost import (CostTotals, LayerCost, group_costs, limit_relation, limit_slack,
                   summarize_config)


def _bits(v) -> str:
    return str(v) if isinstance(v, int) else '/'.join(map(str, v))


def build_report(costs: List[LayerCost], include_fixed: bool,
                 block_types: Optional[Dict[str, str]] = None, settings: Optional[dict] = None,
                 limits: Optional[Dict[str, float]] = None) -> dict:
    """Everything the report shows, as a JSON-ready dict; with ``limits`` (a
    search's, name -> limit) also each limit's value and slack by this count."""
    groups = group_costs(costs)
    block_types = block_types or {}
    for name, g in groups.items():
        g['type'] = block_types.get(name, '+'.join(k.capitalize() for k in g['kinds']))
    totals = summarize_config(costs, {}, include_fixed)
    report = dict(settings=settings or {}, summary=totals.counted.to_dict(),
                  summary_all_layers=totals.all_layers.to_dict(),
                  blocks=groups, layers=[c.to_dict() for c in costs])
    if limits:
        report['constraints'] = {}
        for name, limit in limits.items():
            value = totals.counted.value_of(name)
            slack = limit_slack(name, value, limit)
            report['constraints'][name] = dict(limit=limit, value=value, slack=slack,
                                               inside=slack >= -1e-9)
    return report


def format_report(report: dict) -> str:
    """Human-readable tables of :func:`build_report`'s output."""
    lines = []
    s = report['settings']
    if s:
        lines.append('settings: ' + ', '.join(f'{k}={v}' for k, v in s.items()))
    lines.append('')
    lines.append(f'{"Block":<34}{"B-Type":<18}{"Params":>10}{"FLOPs(MACs)":>14}'
                 f'{"w-bit":>7}{"a-bit":>7}{"fixed":>7}')
    for name, g in report['blocks'].items():
        lines.append(f'{name:<34}{g["type"]:<18}{g["params"]:>10.3g}{g["macs"]:>14.3g}'
                     f'{_bits(g["w_bits"]):>7}{_bits(g["a_bits"]):>7}'
                     f'{("yes" if g["fixed"] else ""):>7}')
    lines.append('')
    lines.append(f'{"Layer":<44}{"kind":<8}{"Params":>10}{"MACs":>14}{"w":>4}{"a":>4}'
                 f'{"BOPs":>14}{"RoIs":>6}')
    for c in report['layers']:
        rois = str(c['rows']) if c['rows'] else ''
        lines.append(f'{c["name"]:<44}{c["kind"]:<8}{c["params"]:>10d}{c["macs"]:>14d}'
                     f'{c["w_bits"]:>4}{c["a_bits"]:>4}{c["bops"]:>14d}{rois:>6}'
                     + ('  fixed' if c['fixed'] else ''))
    lines.append('')
    for key, title in (('summary', 'Totals (as configured)'),
                       ('summary_all_layers', 'Totals (all quantized layers)')):
        t = report[key]
        fixed = 'counted' if t['include_fixed'] else 'not counted'
        lines.append(f'{title}: {t["num_layers"]} layers, fixed-precision layers {fixed}')
        lines.append(f'  w-bits {t["w_bits_mean"]:.2f}  a-bits {t["a_bits_mean"]:.2f}  '
                     f'W-Comp {t["w_comp"]:.2f}x  B-Comp {t["b_comp"]:.2f}x  '
                     f'Ave-bit {t["avg_bits"]:.3f}')
        lines.append(f'  MACs {t["macs"]:,}  params {t["params"]:,}  BOPs {t["bops"]:,}  '
                     f'weights {CostTotals.from_dict(t).weight_mb:.4g} MB')
    if report.get('constraints'):
        lines.append('Limits of the search (by this count):')
        for name, c in report['constraints'].items():
            lines.append(f'  {name}: {c["value"]:.4f} {limit_relation(name)} {c["limit"]:g} (slack '
                         f'{c["slack"]:.4f}){"" if c["inside"] else "  OUTSIDE"}')
    return '\n'.join(lines)
