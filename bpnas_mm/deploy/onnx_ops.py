"""Detection ops that run in PyTorch with ONNX's semantics and export as standard ONNX ops.

Equal scores are ordered by index (lower first) everywhere, as ONNX's
``TopK`` specifies and onnxruntime's ``NonMaxSuppression`` does; a quantized
network gives many equal scores, and mmdet's unstable ``sort`` orders them
arbitrarily. ``topk`` sorts stably and exports as ``TopK``; ``nms_indices``
runs ``mmcv.ops.nms`` (what mmdet's ``batched_nms`` calls) on the boxes in
that order and exports as ``NonMaxSuppression``; ``roi_align`` runs ``mmcv.ops.roi_align``
(``aligned=True``, average pooling) and exports as ``RoiAlign`` with
``coordinate_transformation_mode='half_pixel'`` (opset 16), which is the same
sampling: both shift the scaled box by half a pixel, do not force a minimum
box size, and sample ``ceil(box / bin)`` points per bin when
``sampling_ratio=0``.
"""
import torch


def _const(g, value, dtype):
    return g.op('Constant', value_t=torch.tensor(value, dtype=dtype))


class _TopK(torch.autograd.Function):

    @staticmethod
    def forward(ctx, scores, k: int):
        values, index = scores.sort(descending=True, stable=True)
        return values[:k], index[:k]

    @staticmethod
    def symbolic(g, scores, k):
        return g.op('TopK', scores, _const(g, [k], torch.long), largest_i=1, sorted_i=1,
                    outputs=2)


def topk(scores: torch.Tensor, k: int):
    """``(values, indices)`` of the ``k`` largest of a 1-D tensor; ties: lower index first."""
    return _TopK.apply(scores, int(k))


class _NMSIndices(torch.autograd.Function):

    @staticmethod
    def forward(ctx, boxes, scores, iou_threshold: float, max_num: int):
        from mmcv.ops import nms
        order = scores.sort(descending=True, stable=True)[1]
        # mmcv's kernel sorts by score itself: give it the ranks, so ties keep index order
        ranks = -torch.arange(len(order), dtype=boxes.dtype)
        _, keep = nms(boxes[order], ranks, iou_threshold)
        return order[keep][:max_num]

    @staticmethod
    def symbolic(g, boxes, scores, iou_threshold, max_num):
        axis0 = _const(g, [0], torch.long)
        selected = g.op('NonMaxSuppression',
                        g.op('Unsqueeze', boxes, axis0),
                        g.op('Unsqueeze', g.op('Unsqueeze', scores, axis0), axis0),
                        _const(g, [max_num], torch.long),
                        _const(g, [iou_threshold], torch.float))
        # selected rows are (batch, class, box), in order of decreasing score
        return g.op('Gather', selected, _const(g, 2, torch.long), axis_i=1)


def nms_indices(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float,
                max_num: int) -> torch.Tensor:
    """Indices of the boxes that survive NMS, by decreasing score, at most ``max_num``."""
    return _NMSIndices.apply(boxes, scores, float(iou_threshold), int(max_num))


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor,
                iou_threshold: float, max_num: int) -> torch.Tensor:
    """NMS within each group (mmcv's ``batched_nms``: boxes offset by group so that
    boxes of different groups never overlap). Returns kept indices."""
    # the 0 keeps the maximum defined on an empty set; boxes are clipped to >= 0
    max_coordinate = torch.cat([boxes.reshape(-1), boxes.new_zeros(1)]).max()
    offsets = groups.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
    return nms_indices(boxes + offsets[:, None], scores, iou_threshold, max_num)


class _RoIAlign(torch.autograd.Function):

    @staticmethod
    def forward(ctx, feats, boxes, batch_indices, out_h: int, out_w: int,
                spatial_scale: float, sampling_ratio: int):
        from mmcv.ops import roi_align
        rois = torch.cat([batch_indices.to(boxes)[:, None], boxes], dim=1)
        return roi_align(feats, rois, (out_h, out_w), spatial_scale, sampling_ratio, 'avg',
                         True)

    @staticmethod
    def symbolic(g, feats, boxes, batch_indices, out_h, out_w, spatial_scale, sampling_ratio):
        return g.op('RoiAlign', feats, boxes, batch_indices,
                    coordinate_transformation_mode_s='half_pixel', mode_s='avg',
                    output_height_i=out_h, output_width_i=out_w,
                    sampling_ratio_i=sampling_ratio, spatial_scale_f=spatial_scale)


def roi_align(feats: torch.Tensor, boxes: torch.Tensor, batch_indices: torch.Tensor,
              output_size, spatial_scale: float, sampling_ratio: int) -> torch.Tensor:
    """``(K, C, out_h, out_w)`` features of ``boxes`` (``(K, 4)``, image pixels)."""
    out_h, out_w = output_size
    return _RoIAlign.apply(feats, boxes, batch_indices, int(out_h), int(out_w),
                           float(spatial_scale), int(sampling_ratio))
