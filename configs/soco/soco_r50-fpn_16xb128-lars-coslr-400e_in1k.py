# SoCo paper recipe, 400 epochs (Table 1: 43.0 AP^bb with Mask R-CNN R50-FPN 1x).
_base_ = './soco_r50-fpn_16xb128-lars-coslr-100e_in1k.py'
max_epochs = 400
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 10, by_epoch=True, begin=10,
         end=max_epochs, eta_min=0., convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=50))
