"""What a searched mixed-precision file says about how it was searched.

A search writes its ``quant`` rules, ``grouping`` and ``bops`` settings into the
file (``"searched_with"``). A retrain config that names the file need not
restate them: a setting the retrain config leaves out is taken from the file,
and one it gives must agree with the file, so that the bits, the fixed layers
and the budget's accounting mean the same in both.
"""
import json
from typing import Optional, Tuple

from ..bops.settings import check_bops_cfg
from ..utils.user_files import InputError
from .patcher import QuantRules

KEY = 'searched_with'

#: quantizer settings a retrain must share with its search (which layers are
#: quantized and fixed is checked layer by layer, see QuantModel.apply_mixed_precision)
QUANT_SETTINGS = ('signed', 'reshape_k', 'w_init', 'w_init_k', 'a_init', 'a_init_k',
                  'alpha_grad_scale')


def _plain(value):
    """``value`` as JSON would give it back (tuples as lists)."""
    return json.loads(json.dumps(value))


def search_settings(rules: QuantRules, grouping, bops_cfg: dict) -> dict:
    """The ``searched_with`` entry of a search's file."""
    quant = {f: getattr(rules, f) for f in rules.__dataclass_fields__}
    return _plain(dict(quant=quant, grouping=list(grouping), bops=dict(bops_cfg)))


def settings_for_retrain(extra: dict, quant: Optional[dict], grouping, bops: Optional[dict],
                         where: str) -> Tuple[Optional[dict], list, Optional[dict]]:
    """``(quant, grouping, bops)`` for a model that applies a file with ``extra``.

    A setting given as ``None`` (``grouping``: empty) comes from the file; a given
    one is checked against it (an :class:`InputError` naming the field).
    Files without ``searched_with`` (presets, older searches) change nothing.
    """
    said = extra.get(KEY)
    if not said:
        return quant, list(grouping), bops
    hint = ('make the retrain config agree with the search, or leave model.{} out of it '
            'to take the search\'s')
    if quant is None:
        quant = said['quant']
    else:
        mine, theirs = QuantRules.from_cfg(quant), QuantRules.from_cfg(said['quant'])
        for f in QUANT_SETTINGS:
            a, b = _plain(getattr(mine, f)), _plain(getattr(theirs, f))
            if a != b:
                raise InputError(f'{where}: model.quant.{f} = {a!r}, but the search used {b!r}; '
                                 + hint.format('quant'))
    if not grouping:
        grouping = said['grouping']
    elif _plain(list(grouping)) != said['grouping']:
        raise InputError(f'{where}: model.grouping = {_plain(list(grouping))}, but the search '
                         f'used {said["grouping"]}; ' + hint.format('grouping'))
    if bops is None:
        bops = said['bops']
    else:
        mine, theirs = _plain(check_bops_cfg(bops)), _plain(check_bops_cfg(said['bops']))
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        if diff:
            raise InputError(f'{where}: model.bops.{diff[0]} = {mine[diff[0]]!r}, but the search '
                             f'used {theirs.get(diff[0])!r}; ' + hint.format('bops'))
    return quant, list(grouping), bops
