"""The mixed-precision file format."""
from .mixed_precision import (MixedPrecision, from_groups, load_mixed_precision,
                              save_mixed_precision)

__all__ = ['MixedPrecision', 'from_groups', 'load_mixed_precision', 'save_mixed_precision']
