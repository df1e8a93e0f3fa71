"""A two-stage detector (Faster R-CNN) as one exportable graph.

:class:`DetectorGraph` takes one normalized, padded image and returns the
final detections, repeating mmdet 3.x's test-time computation step by step
(``RPNHead.predict`` with ``rescale=False``, ``StandardRoIHead.predict`` with
``rescale=True``) with ops that the TorchScript exporter turns into standard
ONNX: per-level top-``nms_pre`` (TopK), anchors computed from the kept indices
(no anchor table in the file), delta decoding, clipping to the image, level-
wise NMS (``NonMaxSuppression``), FPN-level RoI assignment, ``RoiAlign``, the
box head, per-class decoding, rescaling and class-wise NMS. In PyTorch it runs
mmcv's NMS and RoIAlign kernels, so its eager output equals mmdet's predict
up to the order of equal scores (ties go to the lower index here, as in ONNX;
mmdet's unstable sort orders them arbitrarily, which can change which of two
equal-scored boxes survives a top-k or an NMS).

Inputs: ``input`` (1, 3, H, W); ``img_shape`` (2,) float, the resized image's
(h, w) inside the padded input (boxes are clipped to it); ``scale_factor``
(2,) float, mmdet's (w_scale, h_scale) of the resize (boxes are divided by
it). Outputs: ``boxes`` (D, 4) x1 y1 x2 y2 in the original image, ``scores``
(D,), ``labels`` (D,) int64, by decreasing score.
"""
import math
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .onnx_ops import batched_nms, roi_align, topk
from .qdq_layers import ExportError


def _require(ok: bool, what: str, allowed: str) -> None:
    if not ok:
        raise ExportError(f'detector export: {what}; allowed: {allowed}')


def _nms_cfg(cfg, where: str) -> float:
    nms = cfg.get('nms', {}) or {}
    _require(nms.get('type', 'nms') == 'nms' and not nms.get('class_agnostic', False),
             f'{where}.nms={dict(nms)}', "type='nms' (not class_agnostic)")
    return float(nms['iou_threshold'])


def _max_num(cfg) -> int:
    return cfg.max_per_img if cfg.get('max_per_img', -1) > 0 else 2 ** 31 - 1


def check_detector(task: nn.Module) -> None:
    """Refuse (``ExportError`` naming the field) what the graph does not repeat exactly."""
    from mmdet.models.dense_heads import RPNHead
    from mmdet.models.roi_heads import StandardRoIHead
    from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
    from mmdet.models.task_modules.coders import DeltaXYWHBBoxCoder
    from mmdet.models.task_modules.prior_generators import AnchorGenerator
    rpn, roi = getattr(task, 'rpn_head', None), getattr(task, 'roi_head', None)
    _require(type(rpn) is RPNHead, f'rpn_head is {type(rpn).__name__}', 'RPNHead')
    _require(type(rpn.prior_generator) is AnchorGenerator,
             f'rpn_head.anchor_generator is {type(rpn.prior_generator).__name__}',
             'AnchorGenerator')
    _require(rpn.use_sigmoid_cls, 'rpn_head.loss_cls.use_sigmoid=False', 'True')
    _require(type(roi) is StandardRoIHead, f'roi_head is {type(roi).__name__}',
             'StandardRoIHead')
    ex = roi.bbox_roi_extractor
    _require(type(ex) is SingleRoIExtractor,
             f'bbox_roi_extractor is {type(ex).__name__}', 'SingleRoIExtractor')
    for layer in ex.roi_layers:
        _require(type(layer).__name__ == 'RoIAlign' and layer.aligned and
                 layer.pool_mode == 'avg', f'roi_layer {layer}',
                 "RoIAlign(aligned=True, pool_mode='avg')")
    head = roi.bbox_head
    _require(not head.custom_cls_channels and not head.loss_cls.use_sigmoid,
             'bbox_head classifies with a custom or sigmoid activation', 'softmax')
    for where, coder in (('rpn_head', rpn.bbox_coder), ('bbox_head', head.bbox_coder)):
        _require(type(coder) is DeltaXYWHBBoxCoder and not coder.add_ctr_clamp,
                 f'{where}.bbox_coder is {type(coder).__name__}',
                 'DeltaXYWHBBoxCoder (add_ctr_clamp=False)')
    _require(getattr(task, 'test_cfg', None) is not None, 'test_cfg is missing',
             'rpn/rcnn test configs')
    _nms_cfg(task.test_cfg.rpn, 'test_cfg.rpn')
    _nms_cfg(task.test_cfg.rcnn, 'test_cfg.rcnn')


def decode_deltas(priors, deltas, coder, img_hw, wh_ratio_clip: float = 16 / 1000):
    """mmdet's ``delta2bbox`` (same float operations), clipped to ``img_hw`` (tensor (h, w))."""
    means = deltas.new_tensor(coder.means).view(1, -1)
    stds = deltas.new_tensor(coder.stds).view(1, -1)
    denorm = deltas * stds + means
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    pxy = (priors[:, :2] + priors[:, 2:]) * 0.5
    pwh = priors[:, 2:] - priors[:, :2]
    max_ratio = abs(math.log(wh_ratio_clip))
    gxy = pxy + pwh * dxy
    gwh = pwh * dwh.clamp(min=-max_ratio, max=max_ratio).exp()
    boxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if coder.clip_border:
        limit = torch.stack([img_hw[1], img_hw[0], img_hw[1], img_hw[0]])
        boxes = torch.minimum(boxes.clamp(min=0), limit)
    return boxes


def level_anchors(prior_generator, level: int, index: torch.Tensor, width: int):
    """The anchors at flat positions ``index`` of a level's (H, W, A) grid (mmdet's order)."""
    base = prior_generator.base_anchors[level].to(index.device)
    num_base = base.shape[0]
    stride_w, stride_h = prior_generator.strides[level]
    cell = torch.div(index, num_base, rounding_mode='floor')
    x = torch.remainder(cell, width).float() * stride_w
    y = torch.div(cell, width, rounding_mode='floor').float() * stride_h
    return base[torch.remainder(index, num_base)] + torch.stack([x, y, x, y], dim=1)


class DetectorGraph(nn.Module):
    """Image in, detections out, for one image (see the module docstring)."""
    input_names = ('input', 'img_shape', 'scale_factor')
    output_names = ('boxes', 'scores', 'labels')

    def __init__(self, task: nn.Module):
        super().__init__()
        check_detector(task)
        self.task = task

    def forward(self, inputs, img_shape, scale_factor):
        feats = self.task.extract_feat(inputs)
        proposals = self.proposals(feats, img_shape)
        return self.detections(feats, proposals, img_shape, scale_factor)

    def proposals(self, feats: Tuple[torch.Tensor], img_shape) -> torch.Tensor:
        """RPN proposals (P, 4), as ``RPNHead.predict(rescale=False)``."""
        head = self.task.rpn_head
        cfg = self.task.test_cfg.rpn
        nms_pre = cfg.get('nms_pre', -1)
        cls_scores, bbox_preds = head(feats)
        scores_, deltas_, priors_, levels_ = [], [], [], []
        for level, (cls, reg) in enumerate(zip(cls_scores, bbox_preds)):
            scores = cls[0].permute(1, 2, 0).reshape(-1).sigmoid()
            deltas = reg[0].permute(1, 2, 0).reshape(-1, 4)
            count = scores.shape[0]
            if 0 < nms_pre < count:
                scores, index = topk(scores, nms_pre)
                deltas = deltas[index]
            else:
                index = torch.arange(count, device=scores.device)
            priors_.append(level_anchors(head.prior_generator, level, index, int(cls.shape[-1])))
            scores_.append(scores)
            deltas_.append(deltas)
            levels_.append(torch.full_like(index, level))
        boxes = decode_deltas(torch.cat(priors_), torch.cat(deltas_), head.bbox_coder, img_shape)
        scores, levels = torch.cat(scores_), torch.cat(levels_)
        min_size = cfg.get('min_bbox_size', -1)
        if min_size >= 0:
            valid = ((boxes[:, 2] - boxes[:, 0]) > min_size) & \
                ((boxes[:, 3] - boxes[:, 1]) > min_size)
            keep = valid.nonzero().squeeze(1)
            boxes, scores, levels = boxes[keep], scores[keep], levels[keep]
        keep = batched_nms(boxes, scores, levels, _nms_cfg(cfg, 'rpn'), _max_num(cfg))
        return boxes[keep]

    def roi_features(self, feats: List[torch.Tensor], boxes: torch.Tensor) -> torch.Tensor:
        """``SingleRoIExtractor``: each box pooled from its FPN level."""
        ex = self.task.roi_head.bbox_roi_extractor
        num_levels = len(ex.roi_layers)
        scale = torch.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
        levels = torch.floor(torch.log2(scale / ex.finest_scale + 1e-6))
        levels = levels.clamp(min=0, max=num_levels - 1).long()
        out_h, out_w = ex.roi_layers[0].output_size
        out = feats[0].new_zeros(boxes.shape[0], ex.out_channels, out_h, out_w)
        batch = torch.zeros_like(levels)
        for i, layer in enumerate(ex.roi_layers):
            inds = (levels == i).nonzero().squeeze(1)
            out[inds] = roi_align(feats[i], boxes[inds], batch[inds], layer.output_size,
                                  layer.spatial_scale, layer.sampling_ratio)
        return out

    def detections(self, feats, proposals, img_shape, scale_factor):
        """``StandardRoIHead.predict(rescale=True)``: boxes, scores, labels."""
        roi_head = self.task.roi_head
        head = roi_head.bbox_head
        cfg = self.task.test_cfg.rcnn
        bbox_feats = self.roi_features(feats[:roi_head.bbox_roi_extractor.num_inputs], proposals)
        cls_score, bbox_pred = head(bbox_feats)
        scores = F.softmax(cls_score, dim=-1)
        num_classes = scores.shape[1] - 1
        per_roi = 1 if head.reg_class_agnostic else num_classes
        rois = proposals.repeat_interleave(per_roi, dim=0)
        boxes = decode_deltas(rois, bbox_pred.view(-1, 4), head.bbox_coder, img_shape)
        boxes = boxes * (1.0 / scale_factor).repeat(2)
        boxes = boxes.view(-1, per_roi, 4).expand(-1, num_classes, 4).reshape(-1, 4)
        labels = torch.arange(num_classes).view(1, -1).expand(scores.shape[0], -1).reshape(-1)
        scores = scores[:, :-1].reshape(-1)
        keep = (scores > cfg.score_thr).nonzero().squeeze(1)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, _nms_cfg(cfg, 'rcnn'), _max_num(cfg))
        return boxes[keep], scores[keep], labels[keep]


class FeatureGraph(nn.Module):
    """A detector's backbone and neck alone: image in, FPN maps out (for timing)."""
    input_names = ('input',)

    def __init__(self, task: nn.Module):
        super().__init__()
        self.task = task
        self.output_names = tuple(f'p{i}' for i in range(len(task.neck.fpn_convs)))

    def forward(self, inputs):
        return tuple(self.task.extract_feat(inputs))
