# Retrain the searched fully quantized Faster R-CNN R50-FPN (paper Sec. 4.3:
# SGD, momentum 0.9, wd 1e-4, MultiStep [16, 22, 25], 27 epochs, batch 16).
#   python tools/train.py configs/bpnas_faster_rcnn_r50_retrain.py --cfg-options \
#       model.mixed_precision=work_dirs/bpnas_faster_rcnn_r50/mixed_precision.json \
#       model.supernet_checkpoint=work_dirs/bpnas_faster_rcnn_r50/epoch_40.pth
# The default file is the paper's own Table 5 configuration.
_base_ = ['quant/faster_rcnn_r50_fpn_w4a4_coco5.py']

model = dict(
    mixed_precision='configs/mixed_precision/faster_rcnn_r50_fpn_coco_paper_bmax4.json',
    float_checkpoint=None,
    supernet_checkpoint=None)
