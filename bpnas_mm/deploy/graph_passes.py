"""Rewrites of an exported ONNX graph (``onnx.ModelProto``, in place).

* :func:`fold_batch_norms`: ``Conv(x, DequantizeLinear(codes, s)) -> BatchNormalization``
  becomes one ``Conv`` whose weight is ``DequantizeLinear(codes', s')`` with the
  per-output-channel scale ``s' = s * |k|`` (``k = gamma / sqrt(var + eps)``),
  ``codes' = codes * sign(k)`` (the symmetric range holds the negation) and
  bias ``(b - mean) * k + beta``. The integer codes keep their magnitudes; the
  numbers change only by float rounding. A ``Conv`` with a float weight
  initializer is left to the runtime's own Conv+BN fusion.
* :func:`narrow_weights`: int8 weight initializers whose layer is 2-4 bits
  wide are stored as ``int4`` (opset 21), with an ``int4`` zero point.
* :func:`widen_int4_weights`: the reverse, for a runtime whose integer
  kernels take only 8-bit weights (onnxruntime's CPU ``QLinearConv``): same
  codes, int8 container.
"""
from typing import Dict, Iterable, List, Optional, Tuple

import ml_dtypes
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Graph:
    """Indexes of a graph: initializers, producers, consumers."""

    def __init__(self, model: onnx.ModelProto):
        self.graph = model.graph
        self.inits = {t.name: t for t in self.graph.initializer}
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.consumers: Dict[str, List[onnx.NodeProto]] = {}
        for n in self.graph.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.outputs = {o.name for o in self.graph.output}

    def array(self, name: str) -> Optional[np.ndarray]:
        """The value of an initializer or of a Constant node's output, else None."""
        t = self.inits.get(name)
        if t is None:
            node = self.producer.get(name)
            if node is None or node.op_type != 'Constant':
                return None
            t = next((a.t for a in node.attribute if a.name == 'value'), None)
        return None if t is None else numpy_helper.to_array(t)

    def is_const(self, name: str) -> bool:
        return self.array(name) is not None

    def replace_init(self, name: str, tensor: onnx.TensorProto) -> None:
        old = self.inits[name]
        self.graph.initializer.remove(old)
        tensor.name = name
        self.graph.initializer.append(tensor)
        self.inits[name] = tensor

    def add_init(self, name: str, array: np.ndarray) -> str:
        base, i = name, 0
        while name in self.inits:
            i += 1
            name = f'{base}_{i}'
        t = numpy_helper.from_array(array, name)
        self.graph.initializer.append(t)
        self.inits[name] = t
        return name

    def sole_use(self, name: str) -> bool:
        return len(self.consumers.get(name, [])) == 1 and name not in self.outputs


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def fold_batch_norms(model: onnx.ModelProto) -> int:
    """Fold each BatchNormalization that follows a Conv with a dequantized
    integer weight into that weight's scales and the Conv's bias. Returns the
    number folded."""
    g = _Graph(model)
    folded = 0
    for bn in [n for n in g.graph.node if n.op_type == 'BatchNormalization']:
        conv = g.producer.get(bn.input[0])
        if (conv is None or conv.op_type != 'Conv' or not g.sole_use(conv.output[0])
                or len(bn.output) != 1 or not all(g.is_const(i) for i in bn.input[1:5])):
            continue
        dq = g.producer.get(conv.input[1])
        if (dq is None or dq.op_type != 'DequantizeLinear' or dq.input[0] not in g.inits
                or not g.sole_use(dq.output[0]) or not g.sole_use(dq.input[0])
                or not all(g.is_const(i) for i in dq.input[1:] if i)):
            continue
        gamma, beta, mean, var = (g.array(i).astype(np.float64) for i in bn.input[1:5])
        k = gamma / np.sqrt(var + _attr(bn, 'epsilon', 1e-5))
        codes = g.array(dq.input[0])
        c_out = codes.shape[0]
        scale = np.broadcast_to(g.array(dq.input[1]).astype(np.float64), (c_out,))
        sign = np.where(k < 0, -1, 1)
        g.replace_init(dq.input[0], numpy_helper.from_array(
            (codes * sign.reshape((-1,) + (1,) * (codes.ndim - 1))).astype(codes.dtype)))
        new_scale = g.add_init(dq.input[1] + '_bn', (scale * np.abs(k)).astype(np.float32))
        zp = g.array(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
        zp_name = g.add_init(dq.input[0] + '_zero_point_bn',
                             np.zeros(c_out, dtype=codes.dtype if zp is None else zp.dtype))
        codes_name = dq.input[0]
        del dq.input[:]
        dq.input.extend([codes_name, new_scale, zp_name])
        for a in list(dq.attribute):
            if a.name == 'axis':
                dq.attribute.remove(a)
        dq.attribute.append(helper.make_attribute('axis', 0))
        bias = (g.array(conv.input[2]).astype(np.float64) if len(conv.input) > 2 and conv.input[2]
                else np.zeros(c_out))
        bias_name = g.add_init(conv.name + '.bias_bn',
                               ((bias - mean) * k + beta).astype(np.float32))
        if len(conv.input) > 2:
            conv.input[2] = bias_name
        else:
            conv.input.append(bias_name)
        conv.output[0] = bn.output[0]
        g.graph.node.remove(bn)
        folded += 1
    return folded


def _set_int_type(g: _Graph, name: str, data_type: int) -> None:
    """Store initializer ``name`` (integer values) as ``data_type`` (INT4 or INT8)."""
    values = g.array(name).astype(np.int8)
    if data_type == TensorProto.INT4:
        values = values.astype(ml_dtypes.int4)  # packed two to a byte in raw_data
    g.replace_init(name, numpy_helper.from_array(values))


def _own_zero_point(g: _Graph, dq: onnx.NodeProto, dtype) -> None:
    """Give ``dq`` a zero point of ``dtype`` of its own (zero points may be shared)."""
    shape = g.array(dq.input[2]).shape if len(dq.input) > 2 and dq.input[2] else ()
    name = g.add_init(dq.input[0] + '_zero_point', np.zeros(shape, dtype=np.int8).astype(dtype))
    if len(dq.input) > 2:
        dq.input[2] = name
    else:
        dq.input.append(name)


def _weight_dq_nodes(g: _Graph) -> Iterable[Tuple[onnx.NodeProto, onnx.NodeProto]]:
    for n in g.graph.node:
        if n.op_type in ('Conv', 'Gemm', 'MatMul') and len(n.input) > 1:
            dq = g.producer.get(n.input[1])
            if dq is not None and dq.op_type == 'DequantizeLinear' and dq.input[0] in g.inits:
                yield n, dq


def narrow_weights(model: onnx.ModelProto, w_bits_of_weight: Dict[str, int]) -> int:
    """Store the weight codes of the layers with ``w_bits <= 4`` as int4.

    ``w_bits_of_weight`` maps a weight initializer's name to its layer's
    width. Every ``DequantizeLinear`` of a narrowed initializer (a layer run
    several times, such as an RPN conv shared by the FPN levels, has one per
    call) gets an int4 zero point. Returns the number of initializers narrowed.
    """
    g = _Graph(model)
    narrowed = 0
    for _, dq in list(_weight_dq_nodes(g)):
        bits = w_bits_of_weight.get(dq.input[0])
        if bits is None or bits > 4:
            continue
        if g.inits[dq.input[0]].data_type == TensorProto.INT8:
            codes = g.array(dq.input[0])
            limit = 2 ** (bits - 1)
            if codes.min() < -limit or codes.max() >= limit:
                raise ValueError(f'{dq.input[0]}: weight codes {codes.min()}..{codes.max()} do '
                                 f'not fit w_bits={bits}')
            _set_int_type(g, dq.input[0], TensorProto.INT4)
            narrowed += 1
        _own_zero_point(g, dq, ml_dtypes.int4)
    return narrowed


def widen_int4_weights(model: onnx.ModelProto) -> int:
    """Store int4 weight codes (and their zero points) as int8; returns how many."""
    g = _Graph(model)
    widened, done = 0, set()
    for _, dq in list(_weight_dq_nodes(g)):
        if dq.input[0] not in done and g.inits[dq.input[0]].data_type != TensorProto.INT4:
            continue
        if dq.input[0] not in done:
            _set_int_type(g, dq.input[0], TensorProto.INT8)
            done.add(dq.input[0])
            widened += 1
        _own_zero_point(g, dq, np.int8)
    return widened


def weight_layers(model: onnx.ModelProto, prefix: str = '') -> Dict[str, dict]:
    """Layer name -> its nodes, for weights named ``<prefix><layer>.weight_codes``
    (the initializer names :class:`~bpnas_mm.deploy.qdq_layers.QDQConv2d` exports).
    A layer called several times has several op and dequantize nodes."""
    g = _Graph(model)
    out = {}
    for node, dq in _weight_dq_nodes(g):
        weight = dq.input[0]
        if not (weight.startswith(prefix) and weight.endswith('.weight_codes')):
            continue
        name = weight[len(prefix):-len('.weight_codes')]
        scale = g.array(dq.input[1])
        entry = out.setdefault(name, dict(op_nodes=[], dequantize_nodes=[], weight=weight,
                                          per_channel=False))
        entry['op_nodes'].append(node.name)
        entry['dequantize_nodes'].append(dq.name)
        entry['per_channel'] |= bool(scale is not None and scale.ndim == 1)
    return out


def prune_initializers(model: onnx.ModelProto) -> int:
    """Drop initializers that no node reads; returns how many."""
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    dead = [t for t in model.graph.initializer if t.name not in used]
    for t in dead:
        model.graph.initializer.remove(t)
    return len(dead)


def inline_constant_identities(model: onnx.ModelProto) -> int:
    """Let consumers read an initializer directly instead of through an
    ``Identity`` (the exporter writes those for deduplicated constants)."""
    g = _Graph(model)
    source = {n.output[0]: n.input[0] for n in g.graph.node
              if n.op_type == 'Identity' and n.input[0] in g.inits
              and n.output[0] not in g.outputs}
    for n in g.graph.node:
        for i, name in enumerate(n.input):
            if name in source:
                n.input[i] = source[name]
    dead = [n for n in g.graph.node if n.op_type == 'Identity' and n.output[0] in source]
    for n in dead:
        g.graph.node.remove(n)
    return len(dead)

