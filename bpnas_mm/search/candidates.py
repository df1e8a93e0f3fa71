"""Candidate ``(w_bits, a_bits)`` lists of a search space."""
from typing import List, Sequence, Tuple

from ..quant.bits import check_bits

Candidate = Tuple[int, int]


def check_candidates(candidates: Sequence, field: str = 'candidates') -> List[Candidate]:
    """Validate a candidate list: non-empty, unique ``(w_bits, a_bits)`` integer pairs.

    >>> check_candidates([[2, 4], (3, 3)])
    [(2, 4), (3, 3)]
    """
    if not isinstance(candidates, (list, tuple)) or len(candidates) == 0:
        raise ValueError(f'{field} must be a non-empty list of (w_bits, a_bits) pairs, '
                         f'e.g. [(2, 4), (3, 3), (4, 4)]; got {candidates!r}')
    out = []
    for i, c in enumerate(candidates):
        if not isinstance(c, (list, tuple)) or len(c) != 2:
            raise ValueError(f'{field}[{i}] must be a (w_bits, a_bits) pair, got {c!r}')
        pair = (check_bits(c[0], f'{field}[{i}].w_bits'), check_bits(c[1], f'{field}[{i}].a_bits'))
        if pair in out:
            raise ValueError(f'{field}[{i}] = {pair} appears twice')
        out.append(pair)
    return out
