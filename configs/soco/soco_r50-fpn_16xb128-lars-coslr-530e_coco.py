# SoCo on COCO train2017 + unlabeled2017 (~241k images) for 530 epochs, about the iteration
# budget of 100 ImageNet epochs (paper Table 9: 40.6 AP^bb; 100 COCO epochs give 37.3). The
# official repository ships no COCO script: the 100-epoch FPN recipe (per-level pooling, views
# and Cutout of ../_base_/datasets/imagenet_soco.py, warm-up from lr / 100, no clipping).
_base_ = [
    '../_base_/models/soco_r50-fpn.py',
    '../_base_/datasets/coco_unlabeled_soco.py',
    '../_base_/schedules/lars_coslr_100e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=128)
optimizer = dict(type='LARS', lr=8.0, momentum=0.9, weight_decay=1e-5)
optim_wrapper = dict(optimizer=optimizer, clip_grad=None)
auto_scale_lr = dict(base_batch_size=2048)
max_epochs = 530
param_scheduler = [  # warm-up from lr / 100, cosine to 1e-6 (the official schedule)
    dict(_base_.param_scheduler[0], start_factor=0.01),
    dict(_base_.param_scheduler[1], T_max=max_epochs - 10, end=max_epochs, eta_min=1e-6),
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=50))
