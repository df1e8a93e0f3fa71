"""The quantized model to deploy: a retrain config plus a checkpoint.

The checkpoint may be a retrain checkpoint (a ``QuantModel``'s state dict), a
``BPNAS`` search checkpoint (its shared weights plus the clips of the widths
the mixed-precision file chose) or a float checkpoint of the task model (then
the quantizers must be calibrated on data before export).
"""
import os
import os.path as osp
from typing import Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from ..models.quant_model import QuantModel
from ..registry import MODELS

CHECKPOINT_KINDS = ('retrain', 'supernet', 'float')


def _fail(msg: str):
    raise SystemExit(msg)


def read_checkpoint(path: str) -> dict:
    """The state dict in ``path`` (``weights_only=True``), or a one-line error."""
    if not osp.isfile(path):
        _fail(f'checkpoint: file not found: {path}')
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # truncated, not a torch file, unsafe content
        _fail(f'checkpoint: cannot read {path}: {type(e).__name__}: {str(e).splitlines()[0]}')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        _fail(f'checkpoint: {path} holds no state dict of tensors')
    return state


def checkpoint_kind(state: dict) -> str:
    """'supernet' (BPNAS), 'retrain' (QuantModel) or 'float' (task model)."""
    if any(k.startswith(('arch_params', 'module.arch_params')) or '.w_quants.' in k
           for k in state):
        return 'supernet'
    if any(k.endswith(('w_quant.alpha', 'a_quant.alpha')) for k in state):
        return 'retrain'
    return 'float'


def load_quant_model(config: str, checkpoint: str, mixed_precision: Optional[str] = None,
                     cfg_options: Optional[dict] = None) -> Tuple[Config, QuantModel, str]:
    """Build the config's ``QuantModel`` and load ``checkpoint`` into it.

    Returns ``(cfg, model in eval mode, checkpoint kind)``. Every problem is a
    one-line ``SystemExit`` naming the file.
    """
    if not osp.isfile(config):
        _fail(f'config: file not found: {config}')
    if mixed_precision is not None and not osp.isfile(mixed_precision):
        _fail(f'--mixed-precision: file not found: {mixed_precision}')
    cfg = Config.fromfile(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if cfg.model.get('type') not in ('bpnas_mm.QuantModel', 'QuantModel'):
        _fail(f'config: {config} builds {cfg.model.get("type")!r}; export needs a retrain config '
              f'(type=bpnas_mm.QuantModel). For a search, pass its retrain config with '
              f'--mixed-precision FILE and the search checkpoint')
    state = read_checkpoint(checkpoint)
    kind = checkpoint_kind(state)
    if mixed_precision is not None:
        cfg.model.mixed_precision = mixed_precision
    cfg.model.float_checkpoint = None
    cfg.model.supernet_checkpoint = checkpoint if kind == 'supernet' else None
    mp = cfg.model.get('mixed_precision')
    if isinstance(mp, str) and not osp.isfile(mp):
        _fail(f'config: model.mixed_precision file not found: {mp} (give --mixed-precision)')
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    try:
        model = MODELS.build(cfg.model)
        model.init_weights()
    except (ValueError, KeyError, RuntimeError) as e:
        _fail(f'config {config} with checkpoint {checkpoint}: {e}')
    if kind != 'supernet':
        prefix = 'architecture.' if any(k.startswith('architecture.') for k in state) else ''
        own = {k[len(prefix):]: v for k, v in state.items()
               if k.startswith(prefix) and not k.startswith('data_preprocessor.')}
        result = model.architecture.load_state_dict(own, strict=False)
        missing = [k for k in result.missing_keys
                   if not k.endswith(('alpha', 'initialized', 'signed_code'))]
        if missing or result.unexpected_keys:
            _fail(f'checkpoint: {checkpoint} does not fit config {config}: '
                  f'{len(missing)} missing keys (e.g. {missing[:3]}), '
                  f'{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]})')
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


def check_writable(out_dir: str) -> None:
    """Refuse an output directory that cannot be created or written, before work starts."""
    parent = osp.dirname(osp.abspath(out_dir))
    if osp.exists(out_dir) and not osp.isdir(out_dir):
        _fail(f'--out: {out_dir} exists and is not a directory')
    probe = out_dir if osp.isdir(out_dir) else parent
    while not osp.exists(probe):
        probe = osp.dirname(probe)
    if not os.access(probe, os.W_OK | os.X_OK):
        _fail(f'--out: cannot write to {probe}')
