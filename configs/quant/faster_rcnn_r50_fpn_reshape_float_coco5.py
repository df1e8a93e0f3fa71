# Float pre-training of Faster R-CNN R50-FPN with distribution reshaping
# (paper Eq. 17-18): weights clipped to 2 * mean|W|, inputs through a learnable
# Clip-ReLU; the starting point of the search and of the retraining
# (model.float_checkpoint=work_dirs/<this>/epoch_27.pth).
_base_ = ['./faster_rcnn_r50_fpn_w4a4_coco5.py']
model = dict(quant=dict(w_bits=32, a_bits=32, reshape_k=2.0))
