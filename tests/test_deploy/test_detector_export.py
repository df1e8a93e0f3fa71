"""One-graph ONNX export of a tiny fully quantized Faster R-CNN, checked with onnxruntime."""
import copy
import os.path as osp

import numpy as np
import onnx
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import bpnas_mm  # noqa: F401  (registers the plugin)
from bpnas_mm.deploy.detector_graph import DetectorGraph
from bpnas_mm.deploy.onnx_export import export_onnx, graph_module
from bpnas_mm.deploy.qdq_layers import ExportError
from bpnas_mm.deploy.verify import match_detections
from bpnas_mm.registry import MODELS

ort = pytest.importorskip('onnxruntime')
DEMO = 'configs/demo/bpnas_faster_rcnn_r18_demo.py'
H, W = 128, 160


def _tiny_model():
    arch = copy.deepcopy(Config.fromfile(DEMO).model.architecture)
    arch.roi_head.bbox_head.fc_out_channels = 64
    arch.test_cfg.rpn.update(nms_pre=200, max_per_img=60)
    fixed = [dict(layers=['backbone.conv1'], w_bits=8, a_bits=8),
             dict(layers=['backbone.layer1.*'], w_bits=2, a_bits=3),
             dict(layers=['neck.*'], w_bits=6, a_bits=5),
             dict(layers=['roi_head.*'], w_bits=3, a_bits=8)]
    cfg = dict(type='bpnas_mm.QuantModel', architecture=arch,
               quant=dict(w_bits=4, a_bits=4, include=['*'], fixed=fixed),
               bops=dict(input_shape=(3, H, W), roi_layers=['roi_head.*'], num_rois=60,
                         include_fixed=True))
    init_default_scope('mmdet')
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.eval()
    return model


def _samples(img_hw, scale):
    from mmdet.structures import DetDataSample
    s = DetDataSample()
    s.set_metainfo(dict(img_shape=img_hw, ori_shape=img_hw, scale_factor=scale,
                        batch_input_shape=(H, W), pad_shape=(H, W)))
    return [s]


@pytest.fixture(scope='module')
def model():
    m = _tiny_model()
    with torch.no_grad():  # calibrate every quantizer (RoI head included) on one image
        m.architecture.predict(torch.randn(1, 3, H, W), _samples((H, W), (1.0, 1.0)))
    return m


def _image(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 3, H, W, generator=g)
    x[..., 100:, :] = 0  # the zero padding below a 100-row image
    return x


def _as_dict(pred):
    return dict(bboxes=pred.bboxes.numpy(), scores=pred.scores.numpy(),
                labels=pred.labels.numpy())


def _graph_dets(module, x, img_hw, scale):
    with torch.no_grad():
        boxes, scores, labels = module(x, torch.tensor(img_hw, dtype=torch.float32),
                                       torch.tensor(scale))
    return dict(bboxes=boxes.numpy(), scores=scores.numpy(), labels=labels.numpy())


def test_graph_module_repeats_mmdet_predict(model):
    """In PyTorch the exportable graph gives mmdet's own detections (clip + rescale),
    up to which of two equal-scored boxes is kept (the quantized RPN has many ties)."""
    module, _ = graph_module(model.architecture, True, model.qlayers)
    img_hw, scale = (100, 150), (0.75, 0.8)
    x = _image(1)
    ours = _graph_dets(module, x, img_hw, scale)
    with torch.no_grad():  # the same integer layers, through mmdet's own predict
        ref = copy.deepcopy(module.task).predict(x, _samples(img_hw, scale))[0].pred_instances
    assert len(ref.bboxes) > 10  # an untrained detector still gives many boxes
    m = match_detections(_as_dict(ref), ours, min_iou=0.999)
    assert m['matched'] >= 0.9 * m['ref'] and m['max_score_diff'] < 1e-6, m
    assert ours['bboxes'][:, 2].max() <= 150 / 0.75 + 1e-3  # clipped to img_shape, rescaled


def test_detector_exports_to_one_standard_graph(model, tmp_path):
    out = str(tmp_path / 'det')
    sidecar = export_onnx(model, out, (1, 3, H, W))
    graph = onnx.load(osp.join(out, 'model.onnx'))
    onnx.checker.check_model(graph)
    ops = {n.op_type for n in graph.graph.node}
    assert ops >= {'NonMaxSuppression', 'RoiAlign', 'TopK', 'QuantizeLinear', 'DequantizeLinear'}
    assert 'BatchNormalization' not in ops
    assert not [d for d in graph.opset_import if d.domain not in ('', 'ai.onnx')]
    roi = [n for n in graph.graph.node if n.op_type == 'RoiAlign']
    assert len(roi) == 4 and all(
        onnx.helper.get_attribute_value(a) == b'half_pixel'
        for n in roi for a in n.attribute if a.name == 'coordinate_transformation_mode')
    assert sorted(sidecar['layers']) == sorted(model.qlayers)
    inits = {t.name: t.data_type for t in graph.graph.initializer}
    for name, entry in sidecar['layers'].items():
        want = onnx.TensorProto.INT4 if entry['w_bits'] <= 4 else onnx.TensorProto.INT8
        assert inits[entry['weight_initializer']] == want, name
    assert sidecar['task'] == 'detector' and set(sidecar['extra_inputs']) == {
        'img_shape', 'scale_factor'}

    sess = ort.InferenceSession(osp.join(out, 'model.onnx'), providers=['CPUExecutionProvider'])
    module, _ = graph_module(model.architecture, True, model.qlayers)
    for seed, img_hw, scale in ((2, (100, 150), (0.5, 0.5)), (3, (H, W), (1.0, 1.0))):
        x = _image(seed)
        feeds = {'input': x.numpy(), 'img_shape': np.array(img_hw, np.float32),
                 'scale_factor': np.array(scale, np.float32)}
        boxes, scores, labels = sess.run(None, feeds)
        assert labels.dtype == np.int64 and boxes.shape == (len(scores), 4)
        out = dict(bboxes=boxes, scores=scores, labels=labels)
        # the graph in PyTorch and in onnxruntime: the same detections, one to one
        m = match_detections(_graph_dets(module, x, img_hw, scale), out, min_iou=0.99)
        assert m['matched'] == m['ref'] == m['out'] > 10 and m['max_score_diff'] < 1e-3, m
        # and mmdet's predict of the fake-quant model, up to the order of equal scores
        with torch.no_grad():
            ref = model.architecture.predict(x, _samples(img_hw, scale))[0].pred_instances
        m = match_detections(_as_dict(ref), out)
        assert m['matched'] >= 0.9 * m['ref'] and m['max_score_diff'] < 1e-3, m
    # the image alone runs it (img_shape and scale_factor default to the input size and 1)
    boxes, _, _ = sess.run(None, {'input': _image(3).numpy()})
    assert np.array_equal(boxes, sess.run(None, feeds)[0])


def test_detector_refuses_batches_and_other_heads(model, tmp_path):
    with pytest.raises(ExportError, match='batch'):
        export_onnx(model, str(tmp_path / 'b2'), (2, 3, H, W))
    assert not osp.exists(tmp_path / 'b2')
    task = copy.deepcopy(model.architecture)
    task.test_cfg.rcnn.nms = dict(type='soft_nms', iou_threshold=0.5)
    with pytest.raises(ExportError, match="test_cfg.rcnn.nms.*allowed: type='nms'"):
        DetectorGraph(task)


def test_match_detections_is_one_to_one():
    a = dict(bboxes=np.array([[0, 0, 10, 10], [0, 0, 10, 10.]]), scores=np.array([.9, .8]),
             labels=np.array([1, 1]))
    b = dict(bboxes=np.array([[0, 0, 10, 10.2]]), scores=np.array([.85]), labels=np.array([1]))
    m = match_detections(a, b)
    assert (m['matched'], m['ref'], m['out']) == (1, 2, 1)
    assert m['max_score_diff'] == pytest.approx(0.05) and m['max_box_diff'] == pytest.approx(.2)
    b['labels'] = np.array([2])
    assert match_detections(a, b)['matched'] == 0
