# Supervised MCL with Swin-T (paper Table 7): ImageNet-1k, 300 epochs, AdamW lr 1e-3 at batch
# 1024 (16 x 64), wd 0.05, 20-epoch warm-up + cosine, the usual Swin decay exclusions.
_base_ = [
    '../_base_/models/mcl-sup_r50-fpn.py',
    '../_base_/datasets/imagenet_mcl-sup.py',
    '../_base_/default_runtime.py',
    '../_base_/models/swin-t.py',
]
model = dict(
    backbone=dict(_base_.swin_t, _delete_=True),
    neck=dict(in_channels=_base_.swin_t_channels))
train_dataloader = dict(batch_size=64)
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.0),
            'relative_position_bias_table': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=20,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=280, by_epoch=True, begin=20, end=300, eta_min=1e-5,
         convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=300)
auto_scale_lr = dict(base_batch_size=1024)
