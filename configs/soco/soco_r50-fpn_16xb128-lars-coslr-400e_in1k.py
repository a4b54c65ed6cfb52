# SoCo, 400 epochs (paper Table 1: 43.0 AP^bb), the official recipe (tools/SoCo_FPN_400ep.sh:
# ImageAsymBboxAwareMultiJitter1, i.e. the 100-epoch recipe without the in-box Cutout).
_base_ = './soco_r50-fpn_16xb128-lars-coslr-100e_in1k.py'
color_view1 = _base_.color_view1
color_view2 = _base_.color_view2
views = dict(_base_.views, view_pipelines=[color_view1, color_view2, color_view2])
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), views, dict(type='PackSoCoInputs')]))
max_epochs = 400
param_scheduler = [  # the 100-epoch schedule, cosine stretched to 400 epochs
    _base_.param_scheduler[0],
    dict(_base_.param_scheduler[1], T_max=max_epochs - 10, end=max_epochs),
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=50))
