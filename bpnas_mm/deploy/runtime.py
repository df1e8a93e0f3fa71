"""onnxruntime sessions for exported graphs, and what the runtime fused."""
import os
import tempfile
from collections import Counter
from typing import Optional

import onnx

from .graph_passes import prune_initializers, widen_int4_weights


def session(path: str, widen_int4: bool = True, threads: Optional[int] = None,
            optimized_path: Optional[str] = None, optimize: bool = True):
    """An onnxruntime CPU session of ``path``.

    ``widen_int4``: hand the runtime int8 copies of int4 weight codes (the same
    codes): onnxruntime's CPU ``QLinearConv`` takes 8-bit weights only, so
    with int4 initializers it keeps those convolutions in float.
    ``optimize=False``: no graph rewrites, so the graph's own arithmetic runs
    (the integer kernels that the rewrites bring round differently).
    """
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only (not the notes on serializing optimized graphs)
    if threads:
        opts.intra_op_num_threads = threads
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    if optimized_path:
        opts.optimized_model_filepath = optimized_path
    model = path
    if widen_int4:
        graph = onnx.load(path)
        if widen_int4_weights(graph):
            prune_initializers(graph)
            model = graph.SerializeToString()
    return ort.InferenceSession(model, opts, providers=['CPUExecutionProvider'])


def fused_ops(path: str, widen_int4: bool = True) -> Counter:
    """Op types of the graph onnxruntime runs after its optimizations."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'optimized.onnx')
        session(path, widen_int4=widen_int4, optimized_path=out)
        return Counter(n.op_type for n in onnx.load(out).graph.node)
