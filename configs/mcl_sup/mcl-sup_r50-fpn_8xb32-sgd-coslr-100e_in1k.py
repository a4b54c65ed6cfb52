# Supervised MCL (paper Table 7, R50): montage pretext with labels, ImageNet-1k, 100 epochs,
# SGD lr 0.1 (batch 256 = 8 x 32), wd 1e-4, cosine; backbone + FPN + head transfer to mmdet.
_base_ = [
    '../_base_/models/mcl-sup_r50-fpn.py',
    '../_base_/datasets/imagenet_mcl-sup.py',
    '../_base_/default_runtime.py',
]
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=95, by_epoch=True, begin=5, end=100, eta_min=0.,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=100)
auto_scale_lr = dict(base_batch_size=256)
