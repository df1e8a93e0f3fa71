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
import warnings
from typing import Dict, Iterable, Optional, Sequence

import onnx
import torch
from onnx import numpy_helper, version_converter
from torch import nn

from ..quant.bits import FLOAT_BITS
from .detector_graph import DetectorGraph, FeatureGraph
from .graph_passes import (fold_batch_norms, inline_constant_identities, narrow_weights,
                           prune_initializers, weight_layers)
from .qdq_layers import ExportError, IntegerSpec, to_qdq
from .requantize import requantize_outputs

TORCHSCRIPT_OPSET = 20
OPSET = 21  # int4 tensors
SIDECAR_FORMAT = 'bpnas_mm.onnx_quant'
WRAPPER_PREFIX = 'task.'
EXTRA_INPUTS = {
    'img_shape': '(2,) float32: (h, w) of the resized image inside the zero-padded input; '
                 'boxes are clipped to it (default: the input size)',
    'scale_factor': '(2,) float32: (w_scale, h_scale) of the resize from the original image; '
                    'boxes are divided by it (default: 1, 1)'}


class ClassifierGraph(nn.Module):
    """Normalized image batch in, logits out (mmpretrain's ``mode='tensor'``)."""
    input_names = ('input',)
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


GRAPHS = ('full', 'features')


def graph_module(task: nn.Module, quantized: bool, qlayers: dict, graph: str = 'full'):
    """``(module to export, name -> IntegerSpec)`` for a deep copy of ``task``.

    ``graph='features'``: a detector's backbone + neck only.
    """
    task = copy.deepcopy(task).eval()
    specs: Dict[str, IntegerSpec] = {}
    if quantized:
        specs = to_qdq(task, {n: task.get_submodule(n) for n in qlayers})
    else:  # the float model of the same weights: quantized layers at 32 bits
        for name in qlayers:
            layer = task.get_submodule(name)
            layer.w_bits = layer.a_bits = FLOAT_BITS
            layer.reshape_k = None
    if task_kind(task) == 'detector':
        return (FeatureGraph(task) if graph == 'features' else DetectorGraph(task)), specs
    return ClassifierGraph(task), specs


def example_inputs(kind: str, input_shape: Sequence[int]) -> tuple:
    """The tensors the graph is traced with (a detector's extra inputs: the image
    fills the whole input, no resize)."""
    x = torch.zeros(tuple(input_shape))
    if kind in ('classifier', 'features'):
        return (x,)
    return x, torch.tensor([float(s) for s in input_shape[2:]]), torch.ones(2)


def _input_defaults(graph: onnx.ModelProto, inputs: tuple, names: Sequence[str]) -> None:
    """Give every graph input after the first its traced value as a default
    (an initializer of the same name), so the image alone runs the graph."""
    for name, value in zip(names[1:], inputs[1:]):
        graph.graph.initializer.append(numpy_helper.from_array(value.numpy(), name))


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


def _layer_entries(model: onnx.ModelProto, specs: Dict[str, IntegerSpec],
                   partial: bool = False) -> Dict[str, dict]:
    """Sidecar entries of the quantized layers (``partial``: of those in the graph)."""
    nodes = weight_layers(model, WRAPPER_PREFIX)
    entries = {}
    for name, spec in specs.items():
        info = nodes.get(name)
        if info is None and partial:
            continue
        if info is None:
            raise RuntimeError(f'layer {name!r} was not found in the exported graph')
        entries[name] = dict(
            op_nodes=info['op_nodes'], weight_initializer=info['weight'],
            weight_dequantize_nodes=info['dequantize_nodes'], kind=spec.kind,
            w_bits=spec.w_bits, w_container=spec.w_container, w_scale=spec.w_scale,
            w_scale_per_channel_after_bn_fold=info['per_channel'],
            a_bits=spec.a_bits, a_container=spec.a_container, a_signed=spec.a_signed,
            a_scale=spec.a_scale, a_zero_point=spec.a_zero_point,
            a_code_range=None if spec.a_qmin is None else [  # codes in the container
                spec.a_qmin + spec.a_zero_point, spec.a_qmax + spec.a_zero_point],
            a_clip=spec.a_clip)
    return entries


def export_onnx(model, out_dir: str, input_shape: Sequence[int], quantized: bool = True,
                dynamic_batch: bool = False, meta: Optional[dict] = None,
                graph: str = 'full', requantize_feeds: Optional[Iterable[dict]] = None) -> dict:
    """Write ``out_dir/model.onnx`` and ``out_dir/model.json`` for a ``QuantModel``.

    ``input_shape`` is ``(N, C, H, W)`` of the (normalized) image input;
    ``graph``: 'full', or 'features' (a detector's backbone + neck).
    ``requantize_feeds``: onnxruntime input dicts to calibrate the optional
    8-bit requantization of unfused outputs (:mod:`.requantize`); None: the
    graph computes what the fake-quant model computes.
    Returns the sidecar dict.
    """
    if graph not in GRAPHS:
        raise ExportError(f'graph={graph!r}; allowed: {GRAPHS}')
    kind = task_kind(model.architecture)
    if kind != 'detector' and graph != 'full':
        raise ExportError(f'graph={graph!r} is for detectors; a {kind} exports graph=\'full\'')
    if kind == 'detector' and graph == 'features':
        kind = 'features'
    if kind == 'detector' and (input_shape[0] != 1 or dynamic_batch):
        raise ExportError(f'a detector graph takes one image: input batch {input_shape[0]}, '
                          f'dynamic_batch={dynamic_batch}; allowed: batch 1, dynamic_batch=False')
    module, specs = graph_module(model.architecture, quantized, model.qlayers, graph)
    inputs = example_inputs(kind, input_shape)
    names = list(module.input_names)
    parent = osp.dirname(osp.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.export_', dir=parent)
    try:
        raw = osp.join(tmp, 'raw.onnx')
        axes = {name: {0: 'batch'} for name in ('input',) + tuple(module.output_names)} \
            if dynamic_batch else None
        with warnings.catch_warnings():  # shapes are fixed: the traced constants are right
            warnings.simplefilter('ignore', torch.jit.TracerWarning)
            torch.onnx.export(module, inputs, raw, dynamo=False,
                              opset_version=TORCHSCRIPT_OPSET, input_names=names,
                              output_names=list(module.output_names), dynamic_axes=axes,
                              do_constant_folding=True)
        graph = version_converter.convert_version(onnx.load(raw), OPSET)
        _input_defaults(graph, inputs, names)
        inline_constant_identities(graph)
        folded = fold_batch_norms(graph)
        entries = _layer_entries(graph, specs, kind == 'features') if quantized else {}
        narrowed = narrow_weights(graph, {e['weight_initializer']: e['w_bits']
                                       for e in entries.values()})
        prune_initializers(graph)
        requantized = {}
        if quantized and requantize_feeds is not None:
            requantized = requantize_outputs(graph, requantize_feeds, kind == 'features')
        onnx.checker.check_model(graph)
        os.remove(raw)
        onnx.save(graph, osp.join(tmp, 'model.onnx'))
        sidecar = dict(
            format=SIDECAR_FORMAT, version=1, task=kind, quantized=quantized, opset=OPSET,
            input=dict(name='input', shape=list(input_shape), dynamic_batch=dynamic_batch,
                       layout='NCHW, normalized', **preprocess_info(model.data_preprocessor)),
            extra_inputs=EXTRA_INPUTS if kind == 'detector' else {},
            outputs=list(module.output_names), batch_norms_folded=folded,
            int4_weights=narrowed, layers=entries, requantized_outputs=requantized,
            **(meta or {}))
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
