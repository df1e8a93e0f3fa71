"""Parity of an exported model: onnxruntime against the PyTorch fake-quant model."""
from typing import Optional

import numpy as np
import torch

from .runtime import session


@torch.no_grad()
def classifier_parity(cfg, model, onnx_path: str, max_batches: Optional[int] = None,
                      widen_int4: bool = True, optimize: bool = True) -> dict:
    """Top-1 of both on the config's test set and their per-image agreement."""
    from mmengine.runner import Runner
    sess = session(onnx_path, widen_int4=widen_int4, optimize=optimize)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    n = ref_correct = ort_correct = agree = 0
    max_abs = 0.0
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        data = model.data_preprocessor(batch, False)
        ref = model.architecture(data['inputs'], mode='tensor')
        out = sess.run(None, {'input': data['inputs'].numpy()})[0]
        labels = torch.cat([s.gt_label for s in data['data_samples']]).numpy()
        ref_top, ort_top = ref.argmax(1).numpy(), out.argmax(1)
        n += len(labels)
        ref_correct += int((ref_top == labels).sum())
        ort_correct += int((ort_top == labels).sum())
        agree += int((ref_top == ort_top).sum())
        max_abs = max(max_abs, float(np.abs(out - ref.numpy()).max()))
    return dict(images=n, top1_pytorch=100.0 * ref_correct / n, top1_onnx=100.0 * ort_correct / n,
                agreement=100.0 * agree / n, max_abs_logit_diff=max_abs)


def pad_to(inputs: torch.Tensor, hw) -> torch.Tensor:
    """Zero-pad a normalized (1, 3, h, w) batch at the bottom/right to the graph's size."""
    h, w = inputs.shape[-2:]
    if h > hw[0] or w > hw[1]:
        raise SystemExit(f'an image of the test pipeline is {h}x{w} after resizing and padding, '
                         f'larger than the exported input {hw[0]}x{hw[1]}; export with '
                         f'--shape covering the pipeline\'s largest size')
    return torch.nn.functional.pad(inputs, (0, hw[1] - w, 0, hw[0] - h))


def detector_feeds(inputs: torch.Tensor, meta: dict) -> dict:
    """onnxruntime inputs of the detector graph for one preprocessed image."""
    return {'input': inputs.numpy(),
            'img_shape': np.array(meta['img_shape'][:2], np.float32),
            'scale_factor': np.array(meta['scale_factor'], np.float32)}


@torch.no_grad()
def calibration_feeds(cfg, model, task: str, input_shape, batches: int):
    """onnxruntime input dicts from ``batches`` batches of the config's test set
    (detectors: one image each, zero-padded to the graph's size)."""
    from mmengine.runner import Runner
    loader = Runner.build_dataloader(cfg.test_dataloader)
    for i, batch in enumerate(loader):
        if i >= batches:
            break
        data = model.data_preprocessor(batch, False)
        if task == 'classifier':
            yield {'input': data['inputs'].numpy()}
        else:
            inputs = pad_to(data['inputs'][:1], input_shape[2:])
            yield detector_feeds(inputs, data['data_samples'][0].metainfo)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of (n, 4) and (m, 4) x1 y1 x2 y2 boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None] - inter, 1e-12)


def match_detections(ref: dict, out: dict, min_iou: float = 0.9) -> dict:
    """Greedy one-to-one matching (same label, IoU >= ``min_iou``, by decreasing score)."""
    iou = box_iou(ref['bboxes'], out['bboxes'])
    same = ref['labels'][:, None] == out['labels'][None, :]
    iou = np.where(same, iou, 0.0)
    used = np.zeros(len(out['bboxes']), bool)
    matched, score_diff, box_diff = 0, 0.0, 0.0
    for i in range(len(ref['bboxes'])):
        cand = np.where(~used & (iou[i] >= min_iou))[0] if iou.shape[1] else []
        if len(cand):
            j = cand[np.argmax(iou[i, cand])]
            used[j] = True
            matched += 1
            score_diff = max(score_diff, abs(float(ref['scores'][i] - out['scores'][j])))
            box_diff = max(box_diff, float(np.abs(ref['bboxes'][i] - out['bboxes'][j]).max()))
    return dict(ref=len(ref['bboxes']), out=len(out['bboxes']), matched=matched,
                max_score_diff=score_diff, max_box_diff=box_diff)


def _dets(boxes, scores, labels) -> dict:
    return dict(bboxes=np.asarray(boxes), scores=np.asarray(scores), labels=np.asarray(labels))


def _add(totals: dict, m: dict) -> None:
    for k in ('ref', 'out', 'matched'):
        totals[k] = totals.get(k, 0) + m[k]
    for k in ('max_score_diff', 'max_box_diff'):
        totals[k] = max(totals.get(k, 0.0), m[k])


@torch.no_grad()
def detector_parity(cfg, model, onnx_path: str, input_hw, max_batches: Optional[int] = None,
                    widen_int4: bool = True, optimize: bool = True) -> dict:
    """CocoMetric bbox mAP of onnxruntime and of the PyTorch model (mmdet's predict)
    on the same padded inputs, and the detections matched one to one against
    mmdet's predict and against the export graph run in PyTorch."""
    import copy

    from mmengine.evaluator import Evaluator
    from mmengine.runner import Runner
    from mmengine.structures import InstanceData

    from .onnx_export import graph_module
    sess = session(onnx_path, widen_int4=widen_int4, optimize=optimize)
    graph, _ = graph_module(model.architecture, True, model.qlayers)
    loader = Runner.build_dataloader(cfg.test_dataloader)
    evaluators = {k: Evaluator(copy.deepcopy(cfg.test_evaluator)) for k in ('pytorch', 'onnx')}
    for e in evaluators.values():
        e.dataset_meta = loader.dataset.metainfo
    vs_predict, vs_graph = {}, {}
    images = 0
    for i, batch in enumerate(loader):
        if max_batches is not None and i >= max_batches:
            break
        data = model.data_preprocessor(batch, False)
        inputs = pad_to(data['inputs'], input_hw)
        samples = data['data_samples']
        if len(samples) != 1:
            raise SystemExit('verify: the detector graph takes one image; set '
                             'test_dataloader.batch_size=1')
        samples[0].set_metainfo(dict(batch_input_shape=tuple(input_hw),
                                     pad_shape=tuple(input_hw)))
        ref = model.architecture.predict(inputs, copy.deepcopy(samples))
        feeds = detector_feeds(inputs, samples[0].metainfo)
        outs = sess.run(['boxes', 'scores', 'labels'], feeds)
        out = copy.deepcopy(samples[0])
        out.pred_instances = InstanceData(
            **{k: torch.from_numpy(v) for k, v in zip(('bboxes', 'scores', 'labels'), outs)})
        evaluators['pytorch'].process(ref, batch)
        evaluators['onnx'].process([out], batch)
        r = ref[0].pred_instances
        _add(vs_predict, match_detections(_dets(r.bboxes, r.scores, r.labels), _dets(*outs)))
        ours = graph(inputs, torch.from_numpy(feeds['img_shape']),
                     torch.from_numpy(feeds['scale_factor']))
        _add(vs_graph, match_detections(_dets(*(t.numpy() for t in ours)), _dets(*outs)))
        images += 1
    maps = {k: e.evaluate(images)['coco/bbox_mAP'] for k, e in evaluators.items()}
    return dict(images=images, input_hw=list(input_hw), bbox_mAP_pytorch=maps['pytorch'],
                bbox_mAP_onnx=maps['onnx'], matched_vs_mmdet_predict=vs_predict,
                matched_vs_export_graph_in_pytorch=vs_graph)
