"""Block-wise grouping of layers: all layers of a group share one precision.

A grouping is a list of regular expressions, each with one capture group; a
layer belongs to the group named by the first expression that matches it
(``re.match`` on the full layer name), and a layer no expression matches forms
a group of its own. Example for an mmdet ResNet/FPN::

    grouping = [r'(backbone\\.layer\\d+\\.\\d+)\\.',   # one group per Bottleneck
                r'(neck\\.\\w+\\.\\d+)\\.']            # one group per FPN conv
"""
import re
from collections import OrderedDict
from typing import Dict, List, Sequence


def compile_grouping(rules: Sequence[str], field_name: str = 'grouping') -> List[re.Pattern]:
    """Compile and check grouping expressions (each needs one capture group)."""
    if isinstance(rules, str):
        rules = [rules]
    out = []
    for i, rule in enumerate(rules):
        try:
            pat = re.compile(rule)
        except (re.error, TypeError) as e:
            raise ValueError(f'{field_name}[{i}]: {rule!r} is not a regular expression ({e})')
        if pat.groups != 1:
            raise ValueError(f'{field_name}[{i}]: {rule!r} must have exactly one capture '
                             f'group naming the block, e.g. r"(backbone\\.layer\\d+\\.\\d+)\\."')
        out.append(pat)
    return out


def assign_groups(names: Sequence[str], rules: Sequence[str], strict: bool = True
                  ) -> 'OrderedDict[str, List[str]]':
    """Map group name -> layer names (order of first appearance).

    With ``strict``, an expression that matches no layer is an error.

    >>> dict(assign_groups(['a.0.x', 'a.0.y', 'b'], [r'(a\\.\\d+)\\.']))
    {'a.0': ['a.0.x', 'a.0.y'], 'b': ['b']}
    """
    pats = compile_grouping(rules)
    groups: Dict[str, List[str]] = OrderedDict()
    used = set()
    for name in names:
        key = name
        for i, pat in enumerate(pats):
            m = pat.match(name)
            if m:
                key = m.group(1)
                used.add(i)
                break
        groups.setdefault(key, []).append(name)
    unused = [rules[i] for i in range(len(pats)) if i not in used]
    if strict and unused:
        raise ValueError(f'grouping: {unused} match no quantized layer; layer names look like '
                         f'{list(names)[:5]}')
    return groups


def layer_to_group(groups: Dict[str, List[str]]) -> Dict[str, str]:
    """Invert :func:`assign_groups`."""
    return {layer: g for g, layers in groups.items() for layer in layers}
