# The demo's second half: retrain the searched fixed mixed-precision detector,
# seeded with the supernet's shared weights, and evaluate it with CocoMetric.
# By default it reads what `tools/train.py configs/demo/bpnas_faster_rcnn_r18_demo.py`
# wrote to its default work dir.
_base_ = ['./bpnas_faster_rcnn_r18_demo.py']

search_dir = 'work_dirs/bpnas_faster_rcnn_r18_demo/'
max_epochs = 2
# quant, grouping and bops are left out: the search's file says how it was searched
# (a retrain config that states them must agree with it)
model = dict(
    _delete_=True,
    type='bpnas_mm.QuantModel',
    architecture={{_base_.model.architecture}},
    mixed_precision=search_dir + 'mixed_precision.json',
    supernet_checkpoint=search_dir + 'epoch_3.pth')

train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=max_epochs,
                 val_interval=max_epochs)
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=0.005, momentum=0.9, weight_decay=1e-4),
                     clip_grad=dict(max_norm=35, norm_type=2))
param_scheduler = [dict(type='MultiStepLR', begin=0, end=max_epochs, by_epoch=True,
                        milestones=[max_epochs - 1], gamma=0.1)]
custom_hooks = []
model_wrapper_cfg = None
