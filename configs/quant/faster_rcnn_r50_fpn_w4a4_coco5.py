# Fully quantized Faster R-CNN R50-FPN (FQN's mode, as the paper): every conv
# and linear of backbone, neck, RPN head and bbox head, weights and inputs,
# at W4A4 (the paper's 4-bit baseline). Inputs that can be negative (the
# image, FPN outputs, RoI features) get signed quantizers, decided from the
# first batch. Training recipe of the paper's retraining: SGD, momentum 0.9,
# wd 1e-4, MultiStep [16, 22, 25], 27 epochs at batch 16 (2 x 8 GPUs).
_base_ = [
    '../_base_/models/faster_rcnn_r50_fpn_coco5.py', '../_base_/datasets/coco5_detection.py',
    '../_base_/default_runtime_det.py'
]

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

train_dataloader = dict(batch_size=2)
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=27, val_interval=1)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
# paper: lr 0.1 at batch 16; mmdet's stable 0.02 for batch 16 is used here
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=27, by_epoch=True, milestones=[16, 22, 25],
         gamma=0.1)
]
auto_scale_lr = dict(enable=True, base_batch_size=16)
