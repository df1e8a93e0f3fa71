# BP-NAS search for ResNet20 on CIFAR-10 at B_max = 3 average bits (paper Sec. 4.1).
# 60 % of the training set trains W (SGD lr 0.2 cosine, momentum 0.9, wd 5e-4),
# the other 40 % trains theta (Adam lr 5e-3, wd 1e-3); batch 512; the first conv
# and the classifier are fixed at 8 bit and left out of the budget.
_base_ = [
    '../_base_/models/resnet20_cifar.py', '../_base_/datasets/cifar10_folder.py',
    '../_base_/default_runtime_cls.py', '../_base_/schedules/bpnas_search_cls.py',
    '../_base_/quant/classifier.py'
]

candidates = [(2, 3), (2, 4), (3, 3), (3, 4), (4, 4), (4, 6), (6, 4), (8, 4)]
budget = 3.0
max_epochs = 60  # as in the schedule base

model = dict(
    _delete_=True,
    type='bpnas_mm.BPNAS',
    architecture={{_base_.model}},
    quant={{_base_.cls_quant}},
    grouping={{_base_.cls_grouping}},  # one search group per BasicBlock
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
default_hooks = dict(checkpoint=dict(interval=5, save_best=None))
