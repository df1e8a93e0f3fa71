"""The files a user hands us: checked up front, each problem one line.

Every file named on a command line or in a config (config, checkpoint,
mixed-precision JSON, output directory) can be missing, truncated, of the
wrong kind, for another model or unwritable. The helpers here turn each of
those into an :class:`InputError` whose message names the setting, the file
(with the directory a relative path was resolved in) and the problem; the
tools print it as one line instead of a traceback (:func:`run_tool`).
Checkpoints are always read with ``weights_only=True``.
"""
import functools
import json
import os
import os.path as osp
import sys
import zipfile
from typing import Callable, Dict, Optional, Tuple

import torch


class InputError(ValueError):
    """A user's file or setting cannot be used (one line: setting, file, problem)."""


def shown(path: str) -> str:
    """``path``, plus the directory it was resolved in when it is relative."""
    path = os.fspath(path)
    return path if osp.isabs(path) else f'{path} (relative to {os.getcwd()})'


def require_file(path, what: str) -> str:
    """``path`` if it is a readable file, else an :class:`InputError`."""
    if path is None or not str(path):
        raise InputError(f'{what}: no file given')
    path = os.fspath(path)
    if not osp.exists(path):
        raise InputError(f'{what}: file not found: {shown(path)}')
    if not osp.isfile(path):
        raise InputError(f'{what}: {shown(path)} is not a file')
    if not os.access(path, os.R_OK):
        raise InputError(f'{what}: {shown(path)} is not readable (permissions)')
    return path


def check_checkpoint_file(path, what: str) -> str:
    """A cheap check that ``path`` is a whole PyTorch checkpoint (the zip
    format's central directory is at the end of the file: a truncated save has
    none); files in the legacy format are loaded to check them."""
    path = require_file(path, what)
    if not zipfile.is_zipfile(path):
        read_state_dict(path, what)
    return path


def read_state_dict(path, what: str) -> Dict[str, torch.Tensor]:
    """The state dict in checkpoint ``path`` (``weights_only=True``)."""
    path = require_file(path, what)
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # truncated, not a torch file, objects weights_only refuses
        first = (str(e).strip().splitlines() or [''])[0][:200]
        raise InputError(f'{what}: {shown(path)} is not a readable PyTorch checkpoint '
                         f'(truncated, or another kind of file): {type(e).__name__}: {first}')
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise InputError(f'{what}: {shown(path)} holds no state dict of tensors')
    return state


def load_fitting(module, state: Dict[str, torch.Tensor], path, what: str,
                 ignore_missing: Tuple[str, ...] = ()) -> None:
    """``module.load_state_dict(state)``, or an :class:`InputError` saying that
    ``path`` holds another model (keys missing or unexpected, other shapes).
    Missing keys ending in ``ignore_missing`` are allowed."""
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as e:  # size mismatches
        detail = ' '.join(str(e).split('\n\t')[1:2]).strip() or str(e).splitlines()[0]
        raise InputError(f'{what}: {shown(path)} is a checkpoint of another model: {detail}')
    missing = [k for k in result.missing_keys if not k.endswith(ignore_missing)]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        parts = [f'{len(keys)} {kind} (e.g. {keys[:3]})' for kind, keys in
                 (('of the model\'s keys missing', missing), ('unexpected', unexpected)) if keys]
        raise InputError(f'{what}: {shown(path)} is a checkpoint of another model: '
                         f'{", ".join(parts)}')


def read_json(path, what: str):
    """The JSON value in ``path``."""
    path = require_file(path, what)
    try:
        with open(path) as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f'{what}: {shown(path)} is not valid JSON ({e})')


def load_config(path, what: str = 'config'):
    """``mmengine.Config.fromfile(path)``, any failure as one line."""
    from mmengine.config import Config
    path = require_file(path, what)
    try:
        return Config.fromfile(path)
    except SyntaxError as e:
        raise InputError(f'{what}: {shown(path)} line {e.lineno}: {e.msg}')
    except Exception as e:  # a JSON list, a missing _base_, an unknown suffix ...
        first = (str(e).strip().splitlines() or [''])[0][:200]
        raise InputError(f'{what}: {shown(path)} cannot be read as an mmengine config: '
                         f'{type(e).__name__}: {first}')


def check_writable_dir(path, what: str) -> str:
    """``path`` if it is, or can be created as, a writable directory."""
    path = os.fspath(path)
    if osp.exists(path) and not osp.isdir(path):
        raise InputError(f'{what}: {shown(path)} exists and is not a directory')
    probe = path if osp.isdir(path) else osp.dirname(osp.abspath(path))
    while not osp.exists(probe):
        probe = osp.dirname(probe)
    if not osp.isdir(probe) or not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f'{what}: cannot write to {shown(probe)}')
    return path


def run_tool(main: Callable[..., Optional[int]]) -> Callable[..., Optional[int]]:
    """Decorate a tool's ``main``: an :class:`InputError` (also one that mmengine's
    registry re-raised with its ``class ... in ...:`` prefix) ends the process
    with ``error: MESSAGE`` on stderr and exit status 2, without a traceback."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except InputError as e:
            print(f'error: {e}', file=sys.stderr)
            raise SystemExit(2)
    return wrapped
