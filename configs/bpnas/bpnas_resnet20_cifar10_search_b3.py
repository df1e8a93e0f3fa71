# BP-NAS search for ResNet20 on CIFAR-10 at B_max = 3 average bits (paper Sec. 4.1).
# 60 % of the training set trains W (SGD lr 0.2 cosine, momentum 0.9, wd 5e-4),
# the other 40 % trains theta (Adam lr 5e-3, wd 1e-3); batch 512; the first conv
# and the classifier are fixed at 8 bit and left out of the budget.
_base_ = [
    '../_base_/models/resnet20_cifar.py', '../_base_/datasets/cifar10_folder.py',
    '../_base_/default_runtime_cls.py'
]

candidates = [(2, 3), (2, 4), (3, 3), (3, 4), (4, 4), (4, 6), (6, 4), (8, 4)]
budget = 3.0
max_epochs = 60

model = dict(
    _delete_=True,
    type='bpnas_mm.BPNAS',
    architecture={{_base_.model}},
    quant=dict(include=['*'],
               fixed=[dict(layers=['backbone.conv1', 'head.fc'], w_bits=8, a_bits=8)]),
    grouping=[r'(backbone\.layer\d\.\d+)\.'],  # one search group per BasicBlock
    candidates=candidates,
    budget=budget,
    search=dict(mode='composite', loss='barrier', mu=0.05, barrier_delta=0.02,
                prob1_weight=1.0),
    bops=dict(input_shape=(3, 32, 32), include_fixed=False),
    # float weights to start from (the distribution-reshaped pre-training, or
    # a converted public checkpoint); None = from scratch
    float_checkpoint=None,
)

split = dict(type='bpnas_mm.SplitDataset', dataset={{_base_.train_dataloader.dataset}},
             ratio=0.6, seed=0)
train_dataloader = dict(batch_size=512, dataset=dict(_delete_=True, part='first', **split))
search_dataloader = dict(
    batch_size=512, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(part='second', **split))

train_cfg = dict(type='bpnas_mm.BPNASSearchLoop', max_epochs=max_epochs,
                 warmup_epochs=0, val_interval=5, search_dataloader=search_dataloader)
val_cfg = dict()
test_cfg = dict()

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
default_hooks = dict(checkpoint=dict(interval=5, save_best=None))

# distributed search (tools/dist_train.sh): BPNAS averages gradients itself
model_wrapper_cfg = dict(type='bpnas_mm.BPNASDistributedWrapper')
