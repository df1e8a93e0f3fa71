# Algorithm 1 for classifiers: W by SGD (cosine), theta by Adam (lr 5e-3,
# wd 1e-3), the barrier's mu schedule, architecture logging and file export.
# Children set train_cfg (the search loop and its search_dataloader) and may
# override the W optimizer and param_scheduler.architecture.0.T_max.
max_epochs = 60
optim_wrapper = dict(
    constructor='bpnas_mm.BPNASOptimWrapperConstructor',
    architecture=dict(optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=5e-4)),
    arch_params=dict(optimizer=dict(type='Adam', lr=5e-3, weight_decay=1e-3)))
param_scheduler = dict(
    architecture=[dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True,
                       eta_min=0.0)],
    arch_params=[dict(type='ConstantLR', factor=1.0, by_epoch=True)])
custom_hooks = [
    dict(type='bpnas_mm.BarrierMuHook', start=0.05, end=0.2, schedule='linear'),
    dict(type='bpnas_mm.ArchLoggingHook', interval=20),
    dict(type='bpnas_mm.MixedPrecisionExportHook', interval=5),
]
# distributed search (tools/dist_train.sh): BPNAS averages gradients itself
model_wrapper_cfg = dict(type='bpnas_mm.BPNASDistributedWrapper')
val_cfg = dict()
test_cfg = dict()
