# MCL on COCO train2017 + unlabeled2017 (~241k images) for 530 epochs, the ImageNet-100-epoch
# iteration budget (paper Table 1), official recipe as ./mcl_r50-fpn_16xb256-lars-coslr-100e_in1k.py
# (no official COCO config exists: its ImageNet recipe with the schedule stretched to 530 epochs).
_base_ = [
    '../_base_/models/mcl_r50-fpn_official.py',
    '../_base_/datasets/coco_unlabeled_mcl.py',
    '../_base_/schedules/mcl_lars_coslr-official_100e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=256)
max_epochs = 530
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-4, convert_to_iter_based=True),
]
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(checkpoint=dict(interval=50))
