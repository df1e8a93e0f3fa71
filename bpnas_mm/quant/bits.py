"""Validation of bit widths, shared by layers, rules and mixed-precision files."""
from typing import Any

FLOAT_BITS = 32  #: a bit width of 32 means "not quantized" (float32)
MIN_BITS = 1


def check_bits(value: Any, field: str) -> int:
    """Return ``value`` as an int bit width or raise a ``ValueError`` naming ``field``.

    Allowed: integers 1..32 (32 means float, no quantization).

    >>> check_bits(4, 'w_bits')
    4
    """
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(
                f'{field} must be an integer in {MIN_BITS}..{FLOAT_BITS} '
                f'(32 = float), got {value!r} ({type(value).__name__})')
    if not MIN_BITS <= value <= FLOAT_BITS:
        raise ValueError(f'{field} must be an integer in {MIN_BITS}..{FLOAT_BITS} '
                         f'(32 = float), got {value}')
    return int(value)
