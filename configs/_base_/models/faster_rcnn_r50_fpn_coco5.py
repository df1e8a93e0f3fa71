# mmdet's Faster R-CNN R50-FPN for a 5-category COCO subset. No ImageNet
# weights can be fetched offline, so the backbone starts without init_cfg.
_base_ = ['mmdet::_base_/models/faster-rcnn_r50_fpn.py']
model = dict(
    backbone=dict(init_cfg=None),
    roi_head=dict(bbox_head=dict(num_classes=5)))
