"""Export a quantized classifier or detector as a standard ONNX integer (QDQ) graph.

Steps: a copy of the task model gets its quantized layers in integer form
(:mod:`.qdq_layers`), the TorchScript exporter (``dynamo=False``) writes opset
20, the graph is converted to opset 21 (int4 tensors), batch norms are folded
into the weights' per-channel scales, weight codes of 2-4-bit layers are
stored as ``int4`` (5-8 bits: ``int8``) and unused initializers are dropped.
Beside ``model.onnx`` goes ``model.json`` (the sidecar): every quantized
layer's graph nodes, widths, signedness and scales. Everything is written to
a temporary directory first and moved into place at the end, so a failure
leaves nothing half-written.
"""
import copy
import json
import os
import os.path as osp
import shutil
import tempfile
from typing import Dict, Optional, Sequence

import onnx
import torch
from onnx import version_converter
from torch import nn

from ..quant.bits import FLOAT_BITS
from .graph_passes import (fold_batch_norms, inline_constant_identities, narrow_weights,
                           prune_initializers, weight_layers)
from .qdq_layers import IntegerSpec, to_qdq

TORCHSCRIPT_OPSET = 20
OPSET = 21  # int4 tensors
SIDECAR_FORMAT = 'bpnas_mm.onnx_quant'
WRAPPER_PREFIX = 'task.'


class ClassifierGraph(nn.Module):
    """Normalized image batch in, logits out (mmpretrain's ``mode='tensor'``)."""
    output_names = ('logits',)

    def __init__(self, task: nn.Module):
        super().__init__()
        self.task = task

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.task(inputs, mode='tensor')


def task_kind(task: nn.Module) -> str:
    from mmdet.models.detectors import TwoStageDetector
    from mmpretrain.models.classifiers import ImageClassifier
    if isinstance(task, ImageClassifier):
        return 'classifier'
    if isinstance(task, TwoStageDetector):
        return 'detector'
    raise SystemExit(f'export: {type(task).__name__} is not supported; allowed: mmpretrain '
                     f'ImageClassifier, mmdet two-stage detectors (Faster R-CNN)')


def graph_module(task: nn.Module, quantized: bool, qlayers: dict):
    """``(module to export, name -> IntegerSpec)`` for a deep copy of ``task``."""
    task = copy.deepcopy(task).eval()
    specs: Dict[str, IntegerSpec] = {}
    if quantized:
        specs = to_qdq(task, {n: task.get_submodule(n) for n in qlayers})
    else:  # the float model of the same weights: quantized layers at 32 bits
        for name in qlayers:
            layer = task.get_submodule(name)
            layer.w_bits = layer.a_bits = FLOAT_BITS
            layer.reshape_k = None
    if task_kind(task) != 'classifier':
        raise SystemExit('export: the one-graph Faster R-CNN export (RPN, RoiAlign, NMS) is not '
                         'implemented yet; classifiers (mmpretrain ImageClassifier) export')
    return ClassifierGraph(task), specs


def preprocess_info(data_preprocessor) -> dict:
    out = {}
    for key in ('mean', 'std'):
        value = getattr(data_preprocessor, key, None)
        if value is not None:
            out[key] = [float(v) for v in value.flatten()]
    for key in ('_channel_conversion', 'bgr_to_rgb'):
        if hasattr(data_preprocessor, key):
            out['bgr_to_rgb'] = bool(getattr(data_preprocessor, key))
    return out


def _layer_entries(model: onnx.ModelProto, specs: Dict[str, IntegerSpec]) -> Dict[str, dict]:
    nodes = weight_layers(model, WRAPPER_PREFIX)
    entries = {}
    for name, spec in specs.items():
        info = nodes.get(name)
        if info is None:
            raise RuntimeError(f'layer {name!r} was not found in the exported graph')
        entries[name] = dict(
            op_node=info['op_node'], weight_initializer=info['weight'],
            weight_dequantize_node=info['dequantize_node'], kind=spec.kind,
            w_bits=spec.w_bits, w_container=spec.w_container, w_scale=spec.w_scale,
            w_scale_per_channel_after_bn_fold=info['per_channel'],
            a_bits=spec.a_bits, a_container=spec.a_container, a_signed=spec.a_signed,
            a_scale=spec.a_scale, a_zero_point=None if spec.a_scale is None else 0,
            a_code_range=None if spec.a_qmin is None else [spec.a_qmin, spec.a_qmax],
            a_clip=spec.a_clip)
    return entries


def export_onnx(model, out_dir: str, input_shape: Sequence[int], quantized: bool = True,
                dynamic_batch: bool = False, meta: Optional[dict] = None) -> dict:
    """Write ``out_dir/model.onnx`` and ``out_dir/model.json`` for a ``QuantModel``.

    ``input_shape`` is ``(N, C, H, W)`` of the (normalized) image input.
    Returns the sidecar dict.
    """
    module, specs = graph_module(model.architecture, quantized, model.qlayers)
    kind = task_kind(model.architecture)
    x = torch.zeros(tuple(input_shape))
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.export_', dir=parent)
    try:
        raw = osp.join(tmp, 'raw.onnx')
        axes = {'input': {0: 'batch'}, module.output_names[0]: {0: 'batch'}} if dynamic_batch \
            else None
        torch.onnx.export(module, (x,), raw, dynamo=False, opset_version=TORCHSCRIPT_OPSET,
                          input_names=['input'], output_names=list(module.output_names),
                          dynamic_axes=axes, do_constant_folding=True)
        graph = version_converter.convert_version(onnx.load(raw), OPSET)
        inline_constant_identities(graph)
        folded = fold_batch_norms(graph)
        entries = _layer_entries(graph, specs) if quantized else {}
        narrowed = narrow_weights(graph, {e['op_node']: e['w_bits'] for e in entries.values()})
        prune_initializers(graph)
        onnx.checker.check_model(graph)
        os.remove(raw)
        onnx.save(graph, osp.join(tmp, 'model.onnx'))
        sidecar = dict(
            format=SIDECAR_FORMAT, version=1, task=kind, quantized=quantized, opset=OPSET,
            input=dict(name='input', shape=list(input_shape), dynamic_batch=dynamic_batch,
                       layout='NCHW, normalized', **preprocess_info(model.data_preprocessor)),
            outputs=list(module.output_names), batch_norms_folded=folded,
            int4_weights=narrowed, layers=entries, **(meta or {}))
        with open(osp.join(tmp, 'model.json'), 'w') as f:
            json.dump(sidecar, f, indent=1)
        if osp.isdir(out_dir):
            for name in ('model.onnx', 'model.json'):
                if osp.exists(osp.join(out_dir, name)):
                    os.remove(osp.join(out_dir, name))
            for name in os.listdir(tmp):
                os.replace(osp.join(tmp, name), osp.join(out_dir, name))
        else:
            os.replace(tmp, out_dir)
            tmp = None
        os.chmod(out_dir, 0o755)
        for path in (osp.join(out_dir, 'model.onnx'), osp.join(out_dir, 'model.json')):
            os.chmod(path, 0o644)
        return sidecar
    finally:
        if tmp is not None and osp.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
