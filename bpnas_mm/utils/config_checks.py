"""Checks of config dicts in one style: each error names the field and what is allowed.

Used by ``search=dict(...)`` (:func:`bpnas_mm.algorithms.bpnas.check_search_cfg`),
``bops=dict(...)`` (:class:`~bpnas_mm.models.QuantModel`) and ``quant=dict(...)``
(:class:`~bpnas_mm.models.patcher.QuantRules`), when the model is built.
"""
import math
from typing import Iterable, Optional


def with_defaults(cfg: Optional[dict], defaults: dict, field: str) -> dict:
    """``defaults`` updated by ``cfg``; unknown keys are refused with the allowed ones."""
    unknown = set(cfg or {}) - set(defaults)
    if unknown:
        raise ValueError(f'{field}: unknown keys {sorted(unknown)}; allowed: {sorted(defaults)}')
    return dict(defaults, **(cfg or {}))


def check_choice(value, field: str, allowed: Iterable):
    """``value`` if it is one of ``allowed``."""
    allowed = tuple(allowed)
    if isinstance(value, bool) and not any(isinstance(a, bool) for a in allowed):
        raise ValueError(f'{field} must be one of {allowed}, got {value!r}')
    if value not in allowed:
        raise ValueError(f'{field} must be one of {allowed}, got {value!r}')
    return value


def check_bool(value, field: str) -> bool:
    """``value`` if it is True or False (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise ValueError(f'{field} must be True or False, got {value!r}')
    return value


def check_number(value, field: str, low: Optional[float] = None, high: Optional[float] = None,
                 open_low: bool = False, open_high: bool = False) -> float:
    """``value`` as a float if it is a finite real number in the range, else a
    ``ValueError`` that names ``field`` and the allowed range.

    >>> check_number(0.5, 'search.mu', low=0.0)
    0.5
    """
    lo = '(' if open_low else '['
    hi = ')' if open_high else ']'
    allowed = f'{lo}{"-inf" if low is None else low}, {"inf" if high is None else high}{hi}'
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value < high if open_high else value <= high
    if not ok:
        raise ValueError(f'{field} must be a finite number in {allowed}, got {value!r}')
    return float(value)
