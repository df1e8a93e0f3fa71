"""``QuantModel``: an mmdet/mmpretrain model with quantized conv/linear layers.

The wrapper builds the task model (``architecture``), swaps its layers for
quantized ones with :func:`quantize_model`, optionally applies a
mixed-precision file, and forwards ``train_step``/``val_step``/``test_step``
to the task model unchanged, so mmdet's and mmpretrain's losses, metrics and
loops work as they are. Layer names everywhere (rules, files, reports) are
relative to the task model.
"""
import re
from typing import Dict, List, Optional, Sequence, Union

from mmengine.model import BaseModel
from mmengine.runner import load_checkpoint
from torch import nn

from ..bops.cost import LayerCost
from ..bops.probe import probe_layers
from ..bops.settings import check_bops_cfg
from ..export.mixed_precision import MixedPrecision, load_mixed_precision
from ..registry import MODELS
from ..search.grouping import assign_groups, layer_to_group
from .patcher import QuantRules, quantize_model
from .probe_inputs import make_probe_forward
from ..utils.user_files import (InputError, check_checkpoint_file, load_fitting,
                                read_state_dict, shown)
from .search_settings import settings_for_retrain
from .supernet_weights import load_supernet

@MODELS.register_module()
class QuantModel(BaseModel):
    """A task model whose conv/linear layers are quantized.

    Args:
        architecture (dict | nn.Module): the mmdet/mmpretrain model (config).
        quant (dict): the rule set, see :class:`bpnas_mm.models.QuantRules`.
        grouping (list[str]): block regexes (:mod:`bpnas_mm.search.grouping`)
            used to report and export per-block precision.
        mixed_precision (str | dict, optional): a mixed-precision file whose
            per-layer bits override ``quant``'s (it must name exactly the
            quantized layers, and agree on fixed-precision ones). A file a
            search wrote also gives ``quant``, ``grouping`` and ``bops`` when
            the config leaves them out, and is checked against them when it
            does not (:mod:`bpnas_mm.models.search_settings`).
        float_checkpoint (str, optional): weights loaded into the task model
            by :meth:`init_weights` (keys of a bare task model, or of a
            wrapper: ``architecture.``/``module.`` prefixes are stripped).
        supernet_checkpoint (str, optional): instead, a ``BPNAS`` search
            checkpoint: shared weights plus the clips of the chosen widths
            (needs the search's ``mixed_precision`` file, which names the
            candidates; see :mod:`bpnas_mm.models.supernet_weights`).
        bops (dict): ``input_shape`` (C, H, W) of the BOPs probe, ``roi_layers``
            and ``num_rois`` for RoI heads, ``include_fixed`` for the totals.
    """

    def __init__(self, architecture: Union[dict, nn.Module], quant: Optional[dict] = None,
                 grouping: Sequence[str] = (), mixed_precision=None,
                 float_checkpoint: Optional[str] = None, bops: Optional[dict] = None,
                 supernet_checkpoint: Optional[str] = None, data_preprocessor=None,
                 init_cfg=None):
        arch = MODELS.build(architecture) if isinstance(architecture, dict) else architecture
        if data_preprocessor is None:
            data_preprocessor = getattr(arch, 'data_preprocessor', None)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.architecture = arch
        mp = None if mixed_precision is None else load_mixed_precision(mixed_precision)
        if mp is not None:  # what the config leaves out, the search's file says
            quant, grouping, bops = settings_for_retrain(mp.extra, quant, grouping, bops,
                                                         _where(mp))
        self.bops_cfg = check_bops_cfg(bops)
        self.quant_rules = QuantRules.from_cfg(quant or {})
        self.grouping = list(grouping)
        self.qlayers = quantize_model(self.architecture, self.quant_rules)
        self.groups = assign_groups(list(self.qlayers), self.grouping)
        if float_checkpoint and supernet_checkpoint:
            raise ValueError('give float_checkpoint or supernet_checkpoint, not both')
        for field, path in (('float_checkpoint', float_checkpoint),
                            ('supernet_checkpoint', supernet_checkpoint)):
            if path and '://' not in str(path):  # a URL is mmengine's to fetch
                check_checkpoint_file(path, f'model.{field}')
        self.float_checkpoint = float_checkpoint
        self.supernet_checkpoint = supernet_checkpoint
        self.mixed_precision: Optional[MixedPrecision] = None
        if mp is not None:
            self.apply_mixed_precision(mp)

    # ------------------------------------------------------------------ precision
    def apply_mixed_precision(self, mp) -> None:
        """Set every quantized layer's bits from a mixed-precision file."""
        mp = load_mixed_precision(mp)
        where = _where(mp)
        mp.check_layers(self.qlayers, where=where)
        for name, layer in self.qlayers.items():
            w_bits, a_bits = mp.bits(name)
            if layer.fixed_precision and (w_bits, a_bits) != (layer.w_bits, layer.a_bits):
                raise InputError(
                    f'{where}: layer {name!r} is fixed at (w_bits={layer.w_bits}, '
                    f'a_bits={layer.a_bits}) by quant.fixed, the file says ({w_bits}, {a_bits})')
        in_file = {n for n, spec in mp.layers.items() if spec.get('fixed')}
        in_cfg = {n for n, layer in self.qlayers.items() if layer.fixed_precision}
        for names, said, not_said in ((sorted(in_file - in_cfg), 'the file', 'quant.fixed'),
                                      (sorted(in_cfg - in_file), 'quant.fixed', 'the file')):
            if names:  # the budget's accounting (fixed layers counted or not) would differ
                raise InputError(
                    f'{where}: {len(names)} layers are fixed in {said} but not in {not_said} '
                    f'(e.g. {names[:3]}); the search and the retrain must fix the same layers: '
                    f'make quant.fixed of this config match the search\'s')
        for name, layer in self.qlayers.items():
            layer.w_bits, layer.a_bits = mp.bits(name)
        self.mixed_precision = mp

    def layer_costs(self) -> List[LayerCost]:
        """Per-layer MACs/params (shape probe) with the current bits and groups,
        in execution order."""
        cfg = self.bops_cfg
        shapes = probe_layers(self.architecture, make_probe_forward(cfg['input_shape']),
                              roi_layers=cfg['roi_layers'], num_rois=cfg['num_rois'])
        group_of = layer_to_group(self.groups)
        silent = [n for n in self.qlayers if n not in shapes]
        if silent:
            raise RuntimeError(f'layers {silent[:5]} did not run in the BOPs probe at input '
                               f'{cfg["input_shape"]}; they cannot be counted')
        costs = []
        for name, s in shapes.items():
            if name not in self.qlayers:
                continue  # a float (excluded) layer
            layer = self.qlayers[name]
            costs.append(LayerCost(name, s.kind, s.macs, s.params, layer.w_bits, layer.a_bits,
                                   bool(layer.fixed_precision), group_of[name], s.rows))
        return costs

    # ------------------------------------------------------------------ weights
    def init_weights(self) -> None:
        super().init_weights()
        if self.float_checkpoint and '://' in str(self.float_checkpoint):
            load_checkpoint(self.architecture, self.float_checkpoint, map_location='cpu',
                            strict=True, revise_keys=[(r'^module\.', ''),
                                                      (r'^architecture\.', '')])
        elif self.float_checkpoint:
            what = 'model.float_checkpoint'
            state = read_state_dict(self.float_checkpoint, what)
            state = {re.sub(r'^(module\.)?(architecture\.)?', '', k): v for k, v in state.items()}
            load_fitting(self.architecture, state, self.float_checkpoint, what)
        if self.supernet_checkpoint:
            what = 'model.supernet_checkpoint'
            self._load_supernet(read_state_dict(self.supernet_checkpoint, what),
                                self.supernet_checkpoint, what)

    def _load_supernet(self, state, path, what: str) -> None:
        """A search checkpoint's weights into this fixed model: the chosen
        candidates' clips (:func:`~bpnas_mm.models.supernet_weights.load_supernet`)."""
        load_supernet(self, state, path, what)

    # ------------------------------------------------------------------ forward
    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        return self.architecture(inputs, data_samples, mode=mode)

    def quant_summary(self) -> Dict[str, tuple]:
        """Layer name -> (w_bits, a_bits, fixed)."""
        return {n: (m.w_bits, m.a_bits, bool(m.fixed_precision)) for n, m in self.qlayers.items()}


def _where(mp: MixedPrecision) -> str:
    return 'model.mixed_precision' + (f' {shown(mp.path)}' if mp.path else '')
