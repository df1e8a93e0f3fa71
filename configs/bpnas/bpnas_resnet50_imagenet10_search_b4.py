# BP-NAS search for ResNet-50 on a 10-class ImageNet subset (paper Sec. 4.2):
# 5,000 images train W, 5,000 train theta, candidates below, B_max = 4.
# Make the subset first:
#   tools/dataset/make_imagenet_subset.py data/imagenet data/imagenet/subset10 \
#       --num-classes 10 --splits search_train=5000 search_val=5000
# The searched file then transfers to the 1000-class model
# (bpnas_resnet50_imagenet_retrain.py): layer names are the same.
# Not in the paper, chosen here: stem conv and classifier fixed at 8 bit (out
# of the budget), batch 64, SGD lr 0.025 cosine, 30 epochs.
_base_ = [
    '../_base_/models/resnet50_imagenet10.py', '../_base_/datasets/imagenet.py',
    '../_base_/default_runtime_cls.py', '../_base_/schedules/bpnas_search_cls.py',
    '../_base_/quant/classifier.py'
]

candidates = [(2, 4), (3, 3), (3, 4), (4, 3), (4, 4), (4, 6), (6, 4)]
budget = 4.0
max_epochs = 30
subset = 'data/imagenet/subset10/meta/'

model = dict(
    _delete_=True,
    type='bpnas_mm.BPNAS',
    architecture={{_base_.model}},
    quant={{_base_.cls_quant}},
    grouping={{_base_.cls_grouping}},  # one group per Bottleneck
    candidates=candidates,
    budget=budget,
    search=dict(mode='composite', loss='barrier', mu=0.05, prob1_weight=1.0),
    bops=dict(input_shape=(3, 224, 224), include_fixed=False),
    float_checkpoint=None)


def _subset(name, pipeline, test_mode=False):
    return dict(type='CustomDataset', data_root='data/imagenet', ann_file=subset + name + '.txt',
                classes=subset + 'classes.txt', pipeline=pipeline, test_mode=test_mode)


train_dataloader = dict(dataset=_subset('search_train', {{_base_.train_pipeline}}))
search_dataloader = dict(
    batch_size=64, num_workers=8, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=_subset('search_val', {{_base_.train_pipeline}}))
val_dataloader = dict(dataset=_subset('search_val', {{_base_.test_pipeline}}, True))
test_dataloader = val_dataloader

train_cfg = dict(type='bpnas_mm.BPNASSearchLoop', max_epochs=max_epochs, warmup_epochs=0,
                 val_interval=5, search_dataloader=search_dataloader)
optim_wrapper = dict(
    architecture=dict(optimizer=dict(lr=0.025, weight_decay=1e-4)))
param_scheduler = dict(architecture=[dict(type='CosineAnnealingLR', T_max=max_epochs,
                                          by_epoch=True, eta_min=0.0)])
default_hooks = dict(checkpoint=dict(interval=5, save_best=None))
