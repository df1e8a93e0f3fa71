"""bpnas_mm: BP-NAS mixed-precision quantization search as an OpenMMLab plugin.

Importing the package registers its components in the ``bpnas_mm`` registries
(see :mod:`bpnas_mm.registry`) and allow-lists the types of mmengine
checkpoints for ``torch.load(weights_only=True)``.
"""
from . import algorithms, bops, datasets, engine, export, models, quant, search  # noqa: F401,E501
from .utils import allow_mmengine_checkpoints

__version__ = '0.1.0'

allow_mmengine_checkpoints()

__all__ = ['__version__']
