# The README's demo: the detection search flow of configs/bpnas_faster_rcnn_r50.py
# at a size a 2-core CPU finishes in minutes: ResNet-18 FPN with 64 channels,
# images at most 320 px, the bundled 5-category COCO128 subset
# (tests/data/coco128_5cat), a few epochs. It proves the plumbing; it does not
# train a useful detector.
_base_ = ['../bpnas_faster_rcnn_r50.py']

data_root = 'tests/data/coco128_5cat/'
max_epochs = 3
small = dict(
    backbone=dict(depth=18, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=64),
    rpn_head=dict(in_channels=64, feat_channels=64),
    roi_head=dict(bbox_roi_extractor=dict(out_channels=64),
                  bbox_head=dict(in_channels=64, fc_out_channels=256)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=500, max_per_img=300),
                   rcnn=dict(sampler=dict(num=128))),
    test_cfg=dict(rpn=dict(nms_pre=300, max_per_img=100)))
model = dict(
    architecture=small,
    bops=dict(input_shape=(3, 320, 320), roi_layers=['roi_head.*'], num_rois=100,
              include_fixed=True))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(320, 320), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]


def _split(name, pipeline, test_mode=False):
    return dict(data_root=data_root, ann_file=f'annotations/instances_{name}.json',
                data_prefix=dict(img=f'{name}/'), pipeline=pipeline, test_mode=test_mode)


loader = dict(num_workers=0, persistent_workers=False)
train_dataloader = dict(batch_size=2, dataset=_split('train', train_pipeline), **loader)
val_dataloader = dict(dataset=_split('test', test_pipeline, True), **loader)
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/instances_test.json')
test_evaluator = val_evaluator
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs,
                 search_dataloader=dict(batch_size=2, dataset=_split('search', train_pipeline),
                                        **loader))
optim_wrapper = dict(architecture=dict(optimizer=dict(lr=0.01)))
param_scheduler = dict(architecture=[
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=10),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs)])
custom_hooks = [
    dict(type='bpnas_mm.BarrierMuHook', start=0.05, end=0.2, schedule='linear'),
    dict(type='bpnas_mm.ArchLoggingHook', interval=5),
    dict(type='bpnas_mm.MixedPrecisionExportHook', interval=1),
]
default_hooks = dict(logger=dict(interval=5))
randomness = dict(seed=0)
