# CPU demo of supervised MCL on real photographed objects: crops of the instances of
# data/objects_coco (9 classes) with their class, ResNet-18-FPN, 128-px views, S = 3, batch 16.
_base_ = [
    '../_base_/models/mcl-sup_r50-fpn.py',
    '../_base_/default_runtime.py',
]
num_levels = 3
img_size = 128
num_classes = 9
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    num_levels=num_levels,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    neck=dict(in_channels=[64, 128, 256, 512], norm_cfg=norm_cfg),
    tile_pooler=dict(out_size=img_size // 32),
    tile_head=dict(norm_cfg=norm_cfg),
    head=dict(num_classes=num_classes))
view_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.5, 1.0),
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropToBox'),
    dict(type='MultiView', num_views=[num_levels], transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    dataset=dict(type='CocoObjectCropDataset', data_root='data/objects_coco',
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img_path='train/'), pipeline=train_pipeline))
max_iters = 300
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-2, by_epoch=False, begin=0, end=max_iters // 10),
    dict(type='CosineAnnealingLR', T_max=max_iters - max_iters // 10, by_epoch=False,
         begin=max_iters // 10, end=max_iters, eta_min=0.),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2))
log_processor = dict(window_size=10, by_epoch=False)
# S = 3 reads P3-P5 only: the FPN's P2 output conv gets no gradient, which DDP must be told about.
find_unused_parameters = True
