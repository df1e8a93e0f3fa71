# SGD lr 0.2, cosine, momentum 0.9, wd 5e-4 (the paper's CIFAR-10 recipe).
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.2, momentum=0.9, weight_decay=5e-4, nesterov=False))
param_scheduler = [dict(type='CosineAnnealingLR', T_max=160, by_epoch=True, eta_min=0.0)]
train_cfg = dict(by_epoch=True, max_epochs=160, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=512)
