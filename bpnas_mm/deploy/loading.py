"""The quantized model to deploy: a retrain config plus a checkpoint.

The checkpoint may be a retrain checkpoint (a ``QuantModel``'s state dict), a
``BPNAS`` search checkpoint (its shared weights plus the clips of the widths
the mixed-precision file chose) or a float checkpoint of the task model (then
the quantizers must be calibrated on data before export).
"""
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ..models.quant_model import QuantModel
from ..registry import MODELS
from ..utils.user_files import (InputError, load_config, load_fitting, read_state_dict,
                                require_file, shown)

CHECKPOINT_KINDS = ('retrain', 'supernet', 'float')


def checkpoint_kind(state: dict) -> str:
    """'supernet' (BPNAS), 'retrain' (QuantModel) or 'float' (task model)."""
    if any(k.startswith(('mutator.', 'module.mutator.', 'arch_params', 'module.arch_params'))
           or '.w_quants.' in k for k in state):
        return 'supernet'
    if any(k.endswith(('w_quant.alpha', 'a_quant.alpha')) for k in state):
        return 'retrain'
    return 'float'


def load_quant_model(config: str, checkpoint: str, mixed_precision: Optional[str] = None,
                     cfg_options: Optional[dict] = None) -> Tuple[Config, QuantModel, str]:
    """Build the config's ``QuantModel`` and load ``checkpoint`` into it.

    Returns ``(cfg, model in eval mode, checkpoint kind)``. Every problem is an
    :class:`~bpnas_mm.utils.user_files.InputError` naming the file.
    """
    cfg = load_config(config)
    if mixed_precision is not None:
        require_file(mixed_precision, '--mixed-precision')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.model.get('type') not in ('bpnas_mm.QuantModel', 'QuantModel'):
        raise InputError(f'config: {config} builds {cfg.model.get("type")!r}; export needs a '
                         f'retrain config (type=bpnas_mm.QuantModel). For a search, pass its '
                         f'retrain config with --mixed-precision FILE and the search checkpoint')
    state = read_state_dict(checkpoint, 'checkpoint')
    kind = checkpoint_kind(state)
    if mixed_precision is not None:
        cfg.model.mixed_precision = mixed_precision
    cfg.model.float_checkpoint = None
    cfg.model.supernet_checkpoint = checkpoint if kind == 'supernet' else None
    mp = cfg.model.get('mixed_precision')
    if isinstance(mp, str):
        require_file(mp, 'config: model.mixed_precision (or give --mixed-precision)')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    try:
        model = MODELS.build(cfg.model)
        model.init_weights()
    except InputError:
        raise
    except (ValueError, KeyError, RuntimeError) as e:
        raise InputError(f'config {shown(config)} with checkpoint {shown(checkpoint)}: {e}')
    if kind != 'supernet':
        prefix = 'architecture.' if any(k.startswith('architecture.') for k in state) else ''
        own = {k[len(prefix):]: v for k, v in state.items()
               if k.startswith(prefix) and not k.startswith('data_preprocessor.')}
        load_fitting(model.architecture, own, checkpoint, f'checkpoint (for {config})',
                     ignore_missing=('alpha', 'initialized', 'signed_code'))
    model.eval()
    return cfg, model, kind


@torch.no_grad()
def calibrate(cfg: Config, model: QuantModel, batches: int = 1) -> int:
    """Run ``batches`` test batches so that uncalibrated quantizers set their
    clips from data (each does so on the first input it sees)."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    seen = 0
    for seen, batch in enumerate(loader, 1):
        model.test_step(batch)
        if seen >= batches:
            break
    return seen
