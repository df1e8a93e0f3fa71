"""The mixed-precision file: per-layer (and per-group) bit widths as JSON.

The search writes it, the presets use it, the BOPs report and the retrain
config read it. Layer names are relative to the task model (``backbone.conv1``,
``roi_head.bbox_head.fc_cls``), not to any wrapper. Shape::

    {
      "format": "bpnas_mm.mixed_precision", "version": 1,
      "source": "free text: where it came from",
      "layers": {"backbone.conv1": {"w_bits": 8, "a_bits": 8, "fixed": true}, ...},
      "groups": {"backbone.layer1.0": {"w_bits": 3, "a_bits": 3,
                                       "layers": ["backbone.layer1.0.conv1", ...]}},
      ... anything else (budget, summary, probabilities) is kept as "extra"
    }

``layers`` is the authority; ``groups`` documents the block-wise choice.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Dict, Iterable, Optional

from ..bops.cost import CostTotals
from ..quant.bits import check_bits
from ..utils.atomic_write import write_atomic
from ..utils.user_files import InputError, read_json, shown

FORMAT = 'bpnas_mm.mixed_precision'
VERSION = 1


@dataclass
class MixedPrecision:
    """Per-layer ``(w_bits, a_bits)`` with optional groups and free extras."""
    layers: Dict[str, dict]
    groups: Dict[str, dict] = field(default_factory=dict)
    source: str = ''
    extra: dict = field(default_factory=dict)
    path: Optional[str] = field(default=None, compare=False)  #: where it was read from

    def __post_init__(self):
        if not isinstance(self.layers, dict) or not self.layers:
            raise ValueError('mixed precision: "layers" must be a non-empty mapping '
                             'layer name -> {"w_bits": int, "a_bits": int}')
        for name, spec in self.layers.items():
            if not isinstance(spec, dict) or not {'w_bits', 'a_bits'} <= set(spec):
                raise ValueError(f'mixed precision: layers[{name!r}] must have "w_bits" '
                                 f'and "a_bits", got {spec!r}')
            spec['w_bits'] = check_bits(spec['w_bits'], f'layers[{name!r}].w_bits')
            spec['a_bits'] = check_bits(spec['a_bits'], f'layers[{name!r}].a_bits')
            spec['fixed'] = bool(spec.get('fixed', False))

    def bits(self, name: str):
        spec = self.layers[name]
        return spec['w_bits'], spec['a_bits']

    def check_layers(self, model_layers: Iterable[str], where: str = 'mixed precision') -> None:
        """Raise ``ValueError`` unless the file names exactly ``model_layers``."""
        model_layers = list(model_layers)
        unknown = [n for n in self.layers if n not in set(model_layers)]
        missing = [n for n in model_layers if n not in self.layers]
        if unknown or missing:
            raise InputError(
                f'{where}: the file does not match the model\'s {len(model_layers)} quantized '
                f'layers: {len(unknown)} layers the model does not have (e.g. {unknown[:3]}), '
                f'{len(missing)} model layers missing from the file (e.g. {missing[:3]})')

    def totals(self, all_layers: bool = False) -> CostTotals:
        """The file's BOPs totals (``summary``, or ``summary_all_layers``), typed."""
        key = 'summary_all_layers' if all_layers else 'summary'
        if key not in self.extra:
            raise KeyError(f'this mixed-precision file has no "{key}" '
                           f'(files of a search or of tools/analysis have one)')
        return CostTotals.from_dict(self.extra[key])

    def to_dict(self) -> dict:
        d = dict(format=FORMAT, version=VERSION, source=self.source,
                 layers=self.layers, groups=self.groups)
        d.update(self.extra)
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = 'mixed precision') -> 'MixedPrecision':
        if not isinstance(d, dict) or d.get('format') != FORMAT:
            raise InputError(f'{where}: not a bpnas_mm mixed-precision file '
                             f'(expected "format": "{FORMAT}")')
        if d.get('version') != VERSION:
            raise InputError(f'{where}: unsupported version {d.get("version")!r}; '
                             f'this bpnas_mm reads version {VERSION}')
        extra = {k: v for k, v in d.items()
                 if k not in ('format', 'version', 'source', 'layers', 'groups')}
        try:
            return cls(layers=d.get('layers'), groups=d.get('groups') or {},
                       source=d.get('source', ''), extra=extra)
        except InputError:
            raise
        except ValueError as e:  # a layer without widths, a width out of range
            raise InputError(f'{where}: {e}')


def load_mixed_precision(path_or_dict) -> MixedPrecision:
    """Read a mixed-precision file (path) or accept its dict/MixedPrecision."""
    if isinstance(path_or_dict, MixedPrecision):
        return path_or_dict
    if isinstance(path_or_dict, dict):
        return MixedPrecision.from_dict(path_or_dict)
    path = os.fspath(path_or_dict)
    data = read_json(path, 'mixed-precision file')
    mp = MixedPrecision.from_dict(data, where=f'mixed-precision file: {shown(path)}')
    mp.path = path
    return mp


def save_mixed_precision(mp: MixedPrecision, path: str) -> str:
    """Write atomically (a temporary file renamed into place), mode 0o666 less the umask."""
    def write(f):
        json.dump(mp.to_dict(), f, indent=2)
        f.write('\n')
    return write_atomic(path, write)


def from_groups(group_bits: Dict[str, tuple], groups: Dict[str, list],
                fixed: Optional[Dict[str, tuple]] = None, source: str = '',
                extra: Optional[dict] = None) -> MixedPrecision:
    """Build a file from per-group ``(w_bits, a_bits)`` and fixed layers."""
    layers, gout = {}, {}
    fixed = fixed or {}
    for g, names in groups.items():
        if g in group_bits:
            w, a = group_bits[g]
            gout[g] = dict(w_bits=w, a_bits=a, layers=list(names))
            for n in names:
                layers[n] = dict(w_bits=w, a_bits=a, fixed=False)
        for n in names:
            if n in fixed:
                layers[n] = dict(w_bits=fixed[n][0], a_bits=fixed[n][1], fixed=True)
    return MixedPrecision(layers=layers, groups=gout, source=source, extra=extra or {})
