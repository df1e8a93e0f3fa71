"""One optimizer for the weights, one for the architecture parameters."""
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict

from ..registry import OPTIM_WRAPPER_CONSTRUCTORS

PARTS = ('architecture', 'arch_params')
#: optim wrapper settings that may be given once for both parts
SHARED_KEYS = ('type', 'loss_scale', 'dtype', 'accumulative_counts', 'clip_grad')


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class BPNASOptimWrapperConstructor:
    """Build ``OptimWrapperDict(architecture=..., arch_params=...)``.

    Config::

        optim_wrapper = dict(
            constructor='bpnas_mm.BPNASOptimWrapperConstructor',
            architecture=dict(optimizer=dict(type='SGD', lr=0.2, momentum=0.9,
                                             weight_decay=5e-4)),
            arch_params=dict(optimizer=dict(type='Adam', lr=5e-3, weight_decay=1e-3)))

    ``architecture`` covers the task model (weights and quantizer clips),
    ``arch_params`` the per-group ``theta``. Each part is an ordinary optim
    wrapper config (``type``, ``paramwise_cfg``, ``clip_grad`` ...). The
    wrapper settings in :data:`SHARED_KEYS` may also be given at the top level
    for both parts (a part's own value wins): this is what ``tools/train.py
    --amp`` sets (``type='AmpOptimWrapper', loss_scale='dynamic'``), as mmdet's
    does.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg=None):
        missing = [p for p in PARTS if p not in optim_wrapper_cfg]
        extra = [k for k in optim_wrapper_cfg if k not in PARTS + SHARED_KEYS]
        if missing or extra:
            raise ValueError(f'optim_wrapper for BPNAS needs the keys {PARTS} and may set '
                             f'{SHARED_KEYS} for both; missing {missing}, unexpected {extra}')
        if paramwise_cfg is not None:
            raise ValueError('optim_wrapper: put paramwise_cfg inside architecture/arch_params')
        shared = {k: optim_wrapper_cfg[k] for k in SHARED_KEYS if k in optim_wrapper_cfg}
        self.cfgs = {k: dict(shared, **optim_wrapper_cfg[k]) for k in PARTS}

    def __call__(self, model) -> OptimWrapperDict:
        module = model.module if is_model_wrapper(model) else model
        wrappers = {}
        for part in PARTS:
            cfg = dict(self.cfgs[part])
            paramwise = cfg.pop('paramwise_cfg', None)
            wrappers[part] = DefaultOptimWrapperConstructor(cfg, paramwise)(getattr(module, part))
        return OptimWrapperDict(**wrappers)
