"""One place that decides which layers are quantized, and how.

A rule set (``QuantRules``, built from a config dict) selects ``nn.Conv2d`` /
``nn.Linear`` modules by their fully qualified names with shell-style patterns
(``fnmatch``: ``'backbone.layer1.*'``) and ``quantize_model`` swaps them for
``QConv2d`` / ``QLinear`` sharing the same parameters. Config shape::

    quant = dict(
        w_bits=4, a_bits=4,            # precision of every selected layer
        include=['*'],                 # which conv/linear layers to quantize
        exclude=[],                    # left in float (and out of BOPs)
        fixed=[dict(layers=['backbone.conv1'], w_bits=8, a_bits=8)],
        signed=[dict(layers=['roi_head.*'], a_signed=True)],  # else auto
        reshape_k=None,                # distribution reshaping (float pre-training)
        alpha_grad_scale=True,         # LSQ's 1/sqrt(N*n) on the clips' gradient
    )

Layers named in ``fixed`` keep their precision whatever a search or a
mixed-precision file says; every pattern must match at least one layer.
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from torch import nn

from ..quant.bits import FLOAT_BITS, check_bits
from ..quant.layers import QConv2d, QLinear, QuantMixin
from ..quant.spec import INIT_MODES, QuantizerSpec, layer_specs
from ..quant.select import match, quantizable_layers
from ..registry import TASK_UTILS
from ..utils.config_checks import check_bool, check_choice, check_number, with_defaults

QUANTIZABLE = {nn.Conv2d: QConv2d, nn.Linear: QLinear}


def _as_list(value, field_name: str) -> List[str]:
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f'{field_name} must be a pattern string or a list of them, got {value!r}')
    return list(value)


@dataclass
class FixedRule:
    layers: List[str]
    w_bits: int
    a_bits: int


@TASK_UTILS.register_module()
@dataclass
class QuantRules:
    """Which layers to quantize and at which precision (see module docstring)."""
    w_bits: int = 4
    a_bits: int = 4
    include: List[str] = field(default_factory=lambda: ['*'])
    exclude: List[str] = field(default_factory=list)
    fixed: List[dict] = field(default_factory=list)
    signed: List[dict] = field(default_factory=list)
    reshape_k: Optional[float] = None
    w_init: str = 'mse'
    w_init_k: float = 100
    a_init: str = 'mse'
    a_init_k: float = 100
    alpha_grad_scale: bool = True

    def __post_init__(self):
        check_bool(self.alpha_grad_scale, 'quant.alpha_grad_scale')
        for kind in ('w', 'a'):
            check_choice(getattr(self, f'{kind}_init'), f'quant.{kind}_init', INIT_MODES)
            check_number(getattr(self, f'{kind}_init_k'), f'quant.{kind}_init_k', low=0,
                         open_low=True)
        if self.reshape_k is not None:
            check_number(self.reshape_k, 'quant.reshape_k', low=0, open_low=True)
        self.w_bits = check_bits(self.w_bits, 'quant.w_bits')
        self.a_bits = check_bits(self.a_bits, 'quant.a_bits')
        self.include = _as_list(self.include, 'quant.include')
        self.exclude = _as_list(self.exclude, 'quant.exclude')
        fixed = []
        for i, rule in enumerate(self.fixed):
            f = f'quant.fixed[{i}]'
            if not isinstance(rule, dict) or set(rule) != {'layers', 'w_bits', 'a_bits'}:
                raise ValueError(f'{f} must be dict(layers=..., w_bits=..., a_bits=...), got {rule!r}')
            fixed.append(FixedRule(_as_list(rule['layers'], f + '.layers'),
                                   check_bits(rule['w_bits'], f + '.w_bits'),
                                   check_bits(rule['a_bits'], f + '.a_bits')))
        self.fixed_rules = fixed
        for i, rule in enumerate(self.signed):
            f = f'quant.signed[{i}]'
            if (not isinstance(rule, dict) or set(rule) != {'layers', 'a_signed'}
                    or rule['a_signed'] not in (True, False, None)):
                raise ValueError(f'{f} must be dict(layers=..., a_signed=True|False|None), got {rule!r}')
            _as_list(rule['layers'], f + '.layers')

    @classmethod
    def from_cfg(cls, cfg) -> 'QuantRules':
        if isinstance(cfg, QuantRules):
            return cfg
        cfg = dict(cfg or {})
        cfg.pop('type', None)
        with_defaults(cfg, {k: None for k in cls.__dataclass_fields__}, 'quant')
        return cls(**cfg)

    def specs(self, entry: dict) -> Tuple[QuantizerSpec, QuantizerSpec]:
        """The weight and input specs of one layer of :meth:`plan`."""
        return layer_specs(w_bits=entry['w_bits'], a_bits=entry['a_bits'],
                           a_signed=entry['a_signed'], reshape_k=self.reshape_k,
                           w_init=self.w_init, w_init_k=self.w_init_k, a_init=self.a_init,
                           a_init_k=self.a_init_k, alpha_grad_scale=self.alpha_grad_scale)

    def plan(self, model: nn.Module) -> Dict[str, dict]:
        """Per selected layer: ``w_bits``, ``a_bits``, ``a_signed``, ``fixed``.

        Raises ``ValueError`` for a pattern that matches no layer.
        """
        names = list(quantizable_layers(model))
        selected = match(self.include, names, 'quant.include')
        excluded = set(match(self.exclude, names, 'quant.exclude'))
        plan = {n: dict(w_bits=self.w_bits, a_bits=self.a_bits, a_signed=None, fixed=False)
                for n in selected if n not in excluded}
        for i, rule in enumerate(self.fixed_rules):
            for n in match(rule.layers, list(plan), f'quant.fixed[{i}].layers'):
                plan[n].update(w_bits=rule.w_bits, a_bits=rule.a_bits, fixed=True)
        for i, rule in enumerate(self.signed):
            for n in match(_as_list(rule['layers'], ''), list(plan), f'quant.signed[{i}].layers'):
                plan[n]['a_signed'] = rule['a_signed']
        return plan


def set_submodule(model: nn.Module, name: str, module: nn.Module) -> None:
    """Replace the submodule ``name`` (dotted path) of ``model`` by ``module``."""
    parent_name, _, child = name.rpartition('.')
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def quantize_model(model: nn.Module, rules) -> Dict[str, QuantMixin]:
    """Swap the layers selected by ``rules`` for quantized ones, in place.

    Args:
        model: any ``nn.Module`` (an mmdet detector, an mmpretrain classifier).
        rules: a :class:`QuantRules` or its config dict.

    Returns:
        dict: layer name -> quantized layer, in module order. Each layer has
        a boolean attribute ``fixed_precision``.
    """
    rules = QuantRules.from_cfg(rules)
    plan = rules.plan(model)
    layers = quantizable_layers(model)
    out = {}
    for name, spec in plan.items():
        module = layers[name]
        w_spec, a_spec = rules.specs(spec)
        if isinstance(module, QuantMixin):
            raise ValueError(f'layer {name!r} is already quantized')
        qcls = QUANTIZABLE[type(module)] if type(module) in QUANTIZABLE else (
            QConv2d if isinstance(module, nn.Conv2d) else QLinear)
        qmod = qcls.from_float(module, w_spec=w_spec, a_spec=a_spec)
        qmod.fixed_precision = spec['fixed']
        set_submodule(model, name, qmod)
        out[name] = qmod
    return out


def quantized_layers(model: nn.Module) -> Dict[str, QuantMixin]:
    """The quantized layers of ``model`` by name, in module order."""
    return {n: m for n, m in model.named_modules() if isinstance(m, QuantMixin)}


__all__ = ['QuantRules', 'quantize_model', 'quantized_layers', 'quantizable_layers',
           'FLOAT_BITS']
