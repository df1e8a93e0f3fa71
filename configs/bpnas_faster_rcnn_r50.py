# BP-NAS search for a fully quantized Faster R-CNN R50-FPN on a 5-category
# COCO subset (paper Sec. 4.3, Table 5): every conv and linear of backbone,
# neck, RPN head and bbox head is searched, weights and inputs; one group per
# Bottleneck, per FPN conv, per RPN conv and per bbox-head linear; candidates
# below; B_max = 4 average bits; path sampling (as the paper, after ProxylessNAS);
# 6K images train W, 4K train theta (both from train2017), batch 1, 40 epochs.
#   python tools/train.py configs/bpnas_faster_rcnn_r50.py
# Make the data first (see README):
#   tools/dataset/make_coco_subset.py data/coco/annotations/instances_train2017.json \
#       data/coco/5cat --categories person car cup dog chair \
#       --splits search_train=6000 search_val=4000
_base_ = [
    '_base_/models/faster_rcnn_r50_fpn_coco5.py', '_base_/datasets/coco5_detection.py',
    '_base_/default_runtime_det.py'
]

candidates = [(2, 4), (3, 3), (3, 4), (3, 5), (4, 4), (4, 6), (6, 4), (4, 8)]
budget = 4.0
max_epochs = 40

model = dict(
    _delete_=True,
    type='bpnas_mm.BPNAS',
    architecture={{_base_.model}},
    quant=dict(include=['*'], fixed=[]),  # fully quantized, nothing fixed
    grouping=[r'(backbone\.layer\d+\.\d+)\.'],  # Bottlenecks; every other layer alone
    candidates=candidates,
    budget=budget,
    search=dict(mode='sample', loss='barrier', mu=0.05, barrier_delta=0.02, prob1_weight=1.0),
    # BOPs at 800x1333 (padded 800x1344), RoI head counted at 1000 RoIs per image
    bops=dict(input_shape=(3, 800, 1344), roi_layers=['roi_head.*'], num_rois=1000,
              include_fixed=True),
    float_checkpoint=None,  # the reshaped float pre-training, when you have it
)

train_cfg = dict(type='bpnas_mm.BPNASSearchLoop', max_epochs=max_epochs, warmup_epochs=0,
                 val_interval=5, search_dataloader={{_base_.search_dataloader}})
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# Paper: "other settings as for CIFAR-10" (SGD lr 0.2 at batch 512). For a
# detector at batch 1 we use mmdet's per-image learning rate (0.02 / 16).
optim_wrapper = dict(
    constructor='bpnas_mm.BPNASOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='SGD', lr=0.00125, momentum=0.9, weight_decay=1e-4),
                      clip_grad=dict(max_norm=35, norm_type=2)),
    arch_params=dict(optimizer=dict(type='Adam', lr=5e-3, weight_decay=1e-3)))
param_scheduler = dict(
    architecture=[
        dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
        dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0,
             end=max_epochs, eta_min=0.0)],
    arch_params=[dict(type='ConstantLR', factor=1.0, by_epoch=True)])

custom_hooks = [
    dict(type='bpnas_mm.BarrierMuHook', start=0.05, end=0.2, schedule='linear'),
    dict(type='bpnas_mm.ArchLoggingHook', interval=50),
    dict(type='bpnas_mm.MixedPrecisionExportHook', interval=1),
]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))
model_wrapper_cfg = dict(type='bpnas_mm.BPNASDistributedWrapper')
auto_scale_lr = dict(enable=False, base_batch_size=1)
