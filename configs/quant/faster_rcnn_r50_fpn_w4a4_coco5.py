# Fully quantized Faster R-CNN R50-FPN (FQN's mode, as the paper): every conv
# and linear of backbone, neck, RPN head and bbox head, weights and inputs,
# at W4A4. Inputs that can be negative (the image, FPN outputs, RoI features)
# get signed quantizers, decided from the first batch.
_base_ = ['../_base_/models/faster_rcnn_r50_fpn_coco5.py']

model = dict(
    _delete_=True,
    type='bpnas_mm.QuantModel',
    architecture={{_base_.model}},
    quant=dict(w_bits=4, a_bits=4, include=['*']),
    # the paper's Table 5 blocks: one group per Bottleneck; every other layer
    # (stem, 8 FPN convs, 3 RPN convs, 4 bbox-head linears) is a group alone
    grouping=[r'(backbone\.layer\d+\.\d+)\.'],
    # BOPs at 800x1333 (padded to 800x1344); the RoI head counted at 1000 RoIs
    # per image (the RPN's test-time proposals)
    bops=dict(input_shape=(3, 800, 1344), roi_layers=['roi_head.*'], num_rois=1000,
              include_fixed=True),
)
