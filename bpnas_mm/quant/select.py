"""Selecting conv/linear layers by fully qualified name (fnmatch patterns)."""
import fnmatch
from typing import Dict, List, Sequence

from torch import nn

#: layer types that can be quantized
QUANTIZABLE_TYPES = (nn.Conv2d, nn.Linear)


def quantizable_layers(model: nn.Module) -> Dict[str, nn.Module]:
    """All ``nn.Conv2d``/``nn.Linear`` modules (quantized or not) by name."""
    return {n: m for n, m in model.named_modules() if isinstance(m, QUANTIZABLE_TYPES) and n}


def match(patterns: Sequence[str], names: Sequence[str], field_name: str,
          strict: bool = True) -> List[str]:
    """Names matched by any of ``patterns``; with ``strict``, each pattern must match.

    >>> match(['a.*'], ['a.x', 'b.y'], 'include')
    ['a.x']
    """
    names = list(names)
    out = []
    for pat in patterns:
        hits = [n for n in names if fnmatch.fnmatchcase(n, pat)]
        if strict and not hits:
            sample = ', '.join(names[:8])
            raise ValueError(
                f'{field_name}: pattern {pat!r} matches no conv/linear layer of the '
                f'model; layer names look like: {sample}, ... '
                f'({len(names)} layers; patterns are fnmatch-style, e.g. "backbone.layer1.*")')
        out.extend(h for h in hits if h not in out)
    return out
