"""BOPs, average bits and compression ratios (paper Eq. 3-4, supplementary 1.A).

Units: ``macs`` are multiply-accumulates (the paper's "FLOP"), ``bops`` are
bit operations ``macs * w_bits * a_bits``, ``avg_bits = sqrt(bops / macs)``
(bits), ``b_comp = 32 * 32 * macs / bops`` and ``w_comp = 32 * params /
sum(params * w_bits)`` (ratios against float32). Whether fixed-precision
layers count is the caller's explicit choice (``include_fixed``); the paper's
Table 1 leaves them out.
"""
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Dict, Iterable, List, Optional, Tuple


@dataclass
class LayerCost:
    """One layer's size and precision."""
    name: str
    kind: str
    macs: int
    params: int
    w_bits: int
    a_bits: int
    fixed: bool = False
    group: Optional[str] = None
    rows: int = 0

    @property
    def bops(self) -> int:
        return self.macs * self.w_bits * self.a_bits

    def to_dict(self) -> dict:
        d = asdict(self)
        d['bops'] = self.bops
        return d


def avg_bits(bops: float, macs: float) -> float:
    """Average bit width of Eq. 4: ``sqrt(bops / macs)``.

    >>> avg_bits(9 * 100, 100)
    3.0
    """
    return math.sqrt(bops / macs)


#: budget limits a value must stay at or above (W-Comp); every other limit is an upper one
LOWER_LIMITS = ('w_comp',)


def limit_relation(name: str) -> str:
    """``'>='`` for a lower limit, ``'<='`` otherwise."""
    return '>=' if name in LOWER_LIMITS else '<='


def limit_slack(name: str, value: float, limit: float) -> float:
    """How far ``value`` is inside the limit ``name`` (negative: outside)."""
    return value - limit if name in LOWER_LIMITS else limit - value


@dataclass(frozen=True)
class CostTotals:
    """Totals over a model's quantized layers (fixed ones counted or not)."""
    num_layers: int
    include_fixed: bool
    macs: int
    params: int
    bops: int
    avg_bits: float     #: sqrt(bops / macs), Eq. 4
    b_comp: float       #: 32 * 32 * macs / bops
    w_comp: float       #: 32 * params / sum(params * w_bits)
    w_bits_mean: float  #: params-weighted
    a_bits_mean: float  #: MACs-weighted

    @property
    def weight_mb(self) -> float:
        """The counted layers' weights at their bits, in MB (1e6 bytes)."""
        return self.params * self.w_bits_mean / 8e6

    def value_of(self, limit_name: str) -> float:
        """The total a budget's limit of that name bounds (``avg_bits``, ``avg_w_bits``,
        ``weight_mb``, ``w_comp``; see :mod:`bpnas_mm.search.constraints`)."""
        values = dict(avg_bits=self.avg_bits, avg_w_bits=self.w_bits_mean,
                      weight_mb=self.weight_mb, w_comp=self.w_comp)
        if limit_name not in values:
            raise KeyError(f'no total for a limit named {limit_name!r}; known: {sorted(values)}')
        return values[limit_name]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> 'CostTotals':
        return cls(**{f.name: d[f.name] for f in fields(cls)})


def summarize(layers: Iterable[LayerCost], include_fixed: bool = False) -> CostTotals:
    """Totals over ``layers`` (fixed-precision ones only if ``include_fixed``)."""
    counted: List[LayerCost] = [c for c in layers if include_fixed or not c.fixed]
    if not counted:
        raise ValueError('no layer to count (all layers are fixed-precision and '
                         'include_fixed is False)')
    macs = sum(c.macs for c in counted)
    params = sum(c.params for c in counted)
    bops = sum(c.bops for c in counted)
    w_bits_total = sum(c.params * c.w_bits for c in counted)
    return CostTotals(
        num_layers=len(counted), include_fixed=include_fixed,
        macs=macs, params=params, bops=bops,
        avg_bits=avg_bits(bops, macs),
        b_comp=32 * 32 * macs / bops,
        w_comp=32 * params / w_bits_total,
        w_bits_mean=w_bits_total / params,
        a_bits_mean=sum(c.macs * c.a_bits for c in counted) / macs,
    )


@dataclass(frozen=True)
class ConfigSummary:
    """One configuration's costs: per layer, as the budget counts them
    (``counted``) and over every quantized layer (``all_layers``)."""
    layers: List[LayerCost]
    counted: CostTotals
    all_layers: CostTotals


def summarize_config(costs: Iterable[LayerCost], group_bits: Dict[str, Tuple[int, int]],
                     include_fixed: bool) -> ConfigSummary:
    """The summary of ``costs`` with every layer of a group in ``group_bits`` at
    that group's ``(w_bits, a_bits)`` (fixed-precision layers and other groups
    keep their bits). The one place a configuration's totals are computed: the
    search's file, the presets' files and the BOPs report use it."""
    layers = [c if c.fixed or c.group not in group_bits else
              replace(c, w_bits=group_bits[c.group][0], a_bits=group_bits[c.group][1])
              for c in costs]
    return ConfigSummary(layers, summarize(layers, include_fixed),
                         summarize(layers, include_fixed=True))


def group_costs(layers: Iterable[LayerCost]) -> Dict[str, dict]:
    """Per-group totals (``macs``, ``params``, ``bops``, bits if uniform)."""
    groups: Dict[str, dict] = {}
    for c in layers:
        g = groups.setdefault(c.group or c.name, dict(layers=[], macs=0, params=0, bops=0,
                                                      w_bits=set(), a_bits=set(),
                                                      fixed=c.fixed, kinds=set()))
        g['layers'].append(c.name)
        g['macs'] += c.macs
        g['params'] += c.params
        g['bops'] += c.bops
        g['w_bits'].add(c.w_bits)
        g['a_bits'].add(c.a_bits)
        g['kinds'].add(c.kind)
        g['fixed'] = g['fixed'] and c.fixed
    for g in groups.values():
        for key in ('w_bits', 'a_bits'):
            vals = sorted(g[key])
            g[key] = vals[0] if len(vals) == 1 else vals
        g['kinds'] = sorted(g['kinds'])
    return groups
