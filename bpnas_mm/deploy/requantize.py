"""Optional 8-bit requantization of the outputs that keep layers out of integer kernels.

onnxruntime (like TensorRT) runs ``DQ(x), DQ(w) -> Conv/Gemm [-> Relu] -> Q``
as one integer op. The fake-quant model quantizes only the inputs of its
conv/linear layers, so a layer whose output goes to a residual ``Add``, a
max pool, several quantizers (an RPN conv read by two heads) or a ``RoiAlign``
has no ``Q`` after it and runs as a float conv. :func:`requantize_outputs`
puts an 8-bit ``QuantizeLinear -> DequantizeLinear`` after each such output
(uint8, zero point 0 when the calibrated minimum is >= 0, else 128 with a
symmetric range; scale from the largest magnitude seen on calibration inputs), so the runtime can fuse the
layer. It is an approximation that the PyTorch model does not make: an
export with it no longer computes exactly what the fake-quant model does
(its accuracy is measured, not assumed). Outputs that are graph outputs or
that feed only reshapes and activations (the RPN's and the box head's
classifiers and regressors) are left alone.
"""
from typing import Dict, Iterable, List

import numpy as np
import onnx
from onnx import TensorProto, helper

from .graph_passes import _Graph, _weight_dq_nodes, prune_initializers, widen_int4_weights
from .qdq_layers import SIGNED_ZERO_POINT

#: consumers that make an unfused output worth requantizing
_TARGET_USERS = ('QuantizeLinear', 'Add', 'MaxPool', 'RoiAlign')


def _fused(g: _Graph, name: str) -> bool:
    users = g.consumers.get(name, [])
    return len(users) == 1 and users[0].op_type == 'QuantizeLinear'


def unfused_outputs(model: onnx.ModelProto, graph_outputs: bool = False) -> List[str]:
    """The tensors after quantized-input layers (after their Relu, if any) that no
    single ``QuantizeLinear`` reads and that feed a residual add, a pool, a
    quantizer or a RoI extractor (``graph_outputs``: or that are graph outputs,
    as a detector's FPN maps are in its backbone + neck graph)."""
    g = _Graph(model)
    out = []
    for node, _ in _weight_dq_nodes(g):
        source = g.producer.get(node.input[0])
        if source is None or source.op_type != 'DequantizeLinear':
            continue  # a float input: nothing integer to fuse
        tensor = node.output[0]
        users = g.consumers.get(tensor, [])
        if len(users) == 1 and users[0].op_type == 'Relu':
            tensor = users[0].output[0]
        if (tensor in g.outputs and not graph_outputs) or _fused(g, tensor) or tensor in out:
            continue
        if (tensor in g.outputs or
                any(u.op_type in _TARGET_USERS for u in g.consumers.get(tensor, []))):
            out.append(tensor)
    return out


def output_ranges(model: onnx.ModelProto, tensors: List[str],
                  feeds: Iterable[dict]) -> Dict[str, tuple]:
    """(min, max) of each tensor over ``feeds``, computed by onnxruntime on the
    graph as written."""
    import onnxruntime as ort
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    widen_int4_weights(probe)
    prune_initializers(probe)
    for t in tensors:
        probe.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(probe.SerializeToString(), opts,
                                providers=['CPUExecutionProvider'])
    lo = {t: np.inf for t in tensors}
    hi = {t: -np.inf for t in tensors}
    seen = 0
    for feed in feeds:
        for t, v in zip(tensors, sess.run(tensors, feed)):
            if v.size:
                lo[t], hi[t] = min(lo[t], float(v.min())), max(hi[t], float(v.max()))
        seen += 1
    if not seen:
        raise ValueError('requantize: no calibration inputs were given')
    return {t: (lo[t], hi[t]) for t in tensors if np.isfinite(lo[t])}


def requantize_outputs(model: onnx.ModelProto, feeds: Iterable[dict],
                       graph_outputs: bool = False) -> Dict[str, dict]:
    """Insert the 8-bit ``Q -> DQ`` pairs (in place); returns tensor -> its quantization."""
    tensors = unfused_outputs(model, graph_outputs)
    ranges = output_ranges(model, tensors, feeds)
    g = _Graph(model)
    done, inserted = {}, {}
    for t, (lo, hi) in ranges.items():
        unsigned = lo >= 0
        scale = np.float32(max(hi if unsigned else max(abs(lo), abs(hi)), 1e-8) /
                           (255 if unsigned else 127))
        zero = np.uint8(0 if unsigned else SIGNED_ZERO_POINT)
        raw = t + '_before_requant'
        g.producer[t].output[list(g.producer[t].output).index(t)] = raw
        s_name = g.add_init(t + '_requant_scale', scale)
        z_name = g.add_init(t + '_requant_zero_point', np.array(zero))
        inserted[raw] = [
            helper.make_node('QuantizeLinear', [raw, s_name, z_name], [t + '_requant'],
                             name=t + '_requant_q'),
            helper.make_node('DequantizeLinear', [t + '_requant', s_name, z_name], [t],
                             name=t + '_requant_dq')]
        done[t] = dict(bits=8, container='uint8', signed=not unsigned, scale=float(scale),
                       zero_point=int(zero), calibrated_range=[lo, hi])
    # each pair right after its producer, so the node list stays in topological order
    nodes = []
    for n in model.graph.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        nodes.append(copy)
        for out in n.output:
            nodes.extend(inserted.get(out, []))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return done

