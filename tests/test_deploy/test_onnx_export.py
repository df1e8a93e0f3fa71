"""ONNX integer export of a small quantized classifier, checked with onnxruntime."""
import json
import os.path as osp

import numpy as np
import onnx
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from onnx import numpy_helper

import bpnas_mm  # noqa: F401  (registers the plugin)
from bpnas_mm.deploy.onnx_export import export_onnx, graph_module
from bpnas_mm.deploy.qdq_layers import ExportError, weight_codes
from bpnas_mm.registry import MODELS
from bpnas_mm.utils.user_files import InputError, check_writable_dir

ort = pytest.importorskip('onnxruntime')
CONFIG = 'configs/quant/resnet20_cifar10_mp.py'


@pytest.fixture(scope='module')
def model():
    cfg = Config.fromfile(CONFIG)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    m = MODELS.build(cfg.model)
    m.init_weights()
    m.eval()
    for mod in m.modules():  # non-trivial batch-norm statistics, one negative gamma
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.2, 0.2)
            mod.running_var.uniform_(0.5, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.weight.data[0] = -0.7
    with torch.no_grad():
        m.architecture(torch.randn(16, 3, 32, 32), mode='tensor')  # calibrate the clips
    return m


def _session(path, optimize=True):
    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(path, opts, providers=['CPUExecutionProvider'])


def test_weight_codes_dequantize_to_the_fake_quantized_weight(model):
    for name, layer in model.qlayers.items():
        codes, scale = weight_codes(layer, name)
        levels = 2 ** (layer.w_bits - 1) - 1
        assert codes.dtype == torch.int8 and int(codes.abs().max()) <= levels
        with torch.no_grad():
            assert torch.equal(codes.float() * torch.tensor(scale), layer.quant_weight()), name


def test_export_writes_an_integer_graph_that_onnxruntime_runs(model, tmp_path):
    out = str(tmp_path / 'r20')
    sidecar = export_onnx(model, out, (1, 3, 32, 32), dynamic_batch=True)
    graph = onnx.load(osp.join(out, 'model.onnx'))
    onnx.checker.check_model(graph)
    assert not [d for d in graph.opset_import if d.domain not in ('', 'ai.onnx')]
    assert {n.op_type for n in graph.graph.node} >= {'QuantizeLinear', 'DequantizeLinear', 'Conv'}
    assert 'BatchNormalization' not in {n.op_type for n in graph.graph.node}
    assert sidecar == json.load(open(osp.join(out, 'model.json')))
    inits = {t.name: t for t in graph.graph.initializer}
    for name, entry in sidecar['layers'].items():
        layer = model.qlayers[name]
        t = inits[entry['weight_initializer']]
        want = onnx.TensorProto.INT4 if layer.w_bits <= 4 else onnx.TensorProto.INT8
        assert t.data_type == want, name
        # the integer check: the graph's codes are the fake quantizer's, bit for bit
        # (negated on channels whose batch-norm gamma is negative)
        codes, _ = weight_codes(layer, name)
        stored = numpy_helper.to_array(t).astype(np.int64)
        assert np.array_equal(np.abs(stored), codes.abs().numpy()), name
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        ref = model.architecture(x, mode='tensor').numpy()
        qdq, _ = graph_module(model.architecture, True, model.qlayers)
        eager = qdq(x).numpy()
    assert (eager.argmax(1) == ref.argmax(1)).all()
    got = _session(osp.join(out, 'model.onnx'), optimize=False).run(None, {'input': x.numpy()})[0]
    assert got.shape == (8, 10)
    np.testing.assert_allclose(got, eager, atol=0.15 * np.abs(eager).max())
    assert (got.argmax(1) == eager.argmax(1)).mean() >= 0.75
    _session(osp.join(out, 'model.onnx')).run(None, {'input': x.numpy()})  # optimized runs too


def test_int4_storage_is_half_of_int8(model, tmp_path):
    sidecar = export_onnx(model, str(tmp_path / 'a'), (1, 3, 32, 32))
    graph = onnx.load(str(tmp_path / 'a' / 'model.onnx'))
    inits = {t.name: t for t in graph.graph.initializer}
    for name, entry in sidecar['layers'].items():
        t = inits[entry['weight_initializer']]
        n = int(np.prod(t.dims))
        assert len(t.raw_data) == ((n + 1) // 2 if t.data_type == onnx.TensorProto.INT4 else n)


def test_widths_over_8_bits_are_refused_and_nothing_is_written(model, tmp_path):
    layer = next(iter(model.qlayers.values()))
    old = layer.w_bits
    layer.w_bits = 9
    try:
        with pytest.raises(ExportError, match='w_bits=9'):
            export_onnx(model, str(tmp_path / 'x'), (1, 3, 32, 32))
    finally:
        layer.w_bits = old
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_is_refused(tmp_path):
    (tmp_path / 'file').write_text('')
    with pytest.raises(InputError, match=r'--out: .*file exists and is not a directory'):
        check_writable_dir(str(tmp_path / 'file'), '--out')


def test_requantized_outputs_let_the_runtime_fuse_every_conv(model, tmp_path):
    from bpnas_mm.deploy.runtime import fused_ops, session
    x = np.random.default_rng(0).standard_normal((8, 3, 32, 32)).astype(np.float32)
    plain = str(tmp_path / 'plain')
    export_onnx(model, plain, (1, 3, 32, 32), dynamic_batch=True)
    out = str(tmp_path / 'requant')
    sidecar = export_onnx(model, out, (1, 3, 32, 32), dynamic_batch=True,
                          requantize_feeds=[{'input': x}])
    req = sidecar['requantized_outputs']
    # ResNet20: the 9 convs that feed a residual Add (plus the stem, read by the first
    # block's conv and its identity path) get an 8-bit Q/DQ after them
    assert len(req) >= 9
    for name, q in req.items():
        lo, hi = q['calibrated_range']
        assert q['container'] == 'uint8' and q['zero_point'] == (0 if lo >= 0 else 128)
        assert q['scale'] == pytest.approx(max(abs(lo), abs(hi)) / (255 if lo >= 0 else 127),
                                           rel=1e-6)
    graph = onnx.load(osp.join(out, 'model.onnx'))
    onnx.checker.check_model(graph)
    before, after = fused_ops(osp.join(plain, 'model.onnx')), fused_ops(osp.join(out, 'model.onnx'))
    assert after['QLinearConv'] > before['QLinearConv']
    assert after['QLinearConv'] + after['Conv'] + after['FusedConv'] == 19
    a = session(osp.join(plain, 'model.onnx'), optimize=False).run(None, {'input': x})[0]
    b = session(osp.join(out, 'model.onnx'), optimize=False).run(None, {'input': x})[0]
    # an approximation (8-bit outputs), not the fake-quant model's exact arithmetic
    assert 0 < np.abs(a - b).max() < 0.25 * np.abs(a).max()
