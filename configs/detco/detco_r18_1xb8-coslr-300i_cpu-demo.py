# CPU demo: ResNet-18, small views (global 112 px; jigsaw crop 96 px -> 3x3 cells of 32 px ->
# 24 px patches, the paper's 64/85 ratio), batch 8, queues of 256 keys, MLP hidden 512,
# 300 iterations, BN.
# Data: data/pretrain from tools/prepare_data.py (unlabelled photos).
_base_ = [
    '../_base_/models/detco_r50.py',
    '../_base_/datasets/detco_imagenet.py',
    '../_base_/default_runtime.py',
]
img_size = 112
jigsaw_crop_size = 96
patch_size = 24
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    queue_len=256,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    neck=dict(in_channels=(64, 128, 256, 512), hid_channels=512))

color_transforms = [
    dict(type='RandomApply',
         transforms=[dict(type='HueSafeColorJitter', brightness=0.4, contrast=0.4,
                          saturation=0.4, hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
]
global_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.), backend='pillow'),
    *color_transforms,
    dict(type='RandomFlip', prob=0.5),
]
local_pipeline = [
    dict(type='JigsawPatches', crop_size=jigsaw_crop_size, crop_ratio_range=(0.6, 1.),
         grid=3, patch_size=patch_size, shuffle=False,
         patch_pipeline=[*color_transforms, dict(type='RandomFlip', prob=0.5)]),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GlobalLocalViews', global_pipeline=global_pipeline,
         local_pipeline=local_pipeline, num_global=2, num_local=2),
    dict(type='PackInputs',
         meta_keys=('img_path', 'num_global_views', 'num_patch_sets', 'jigsaw_grid',
                    'jigsaw_crop_size', 'patch_order', 'patch_boxes', 'jigsaw_crop_box')),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    dataset=dict(_delete_=True, type='UnlabeledImageDataset', data_root='data/pretrain',
                 ann_file='meta/train.txt', data_prefix=dict(img_path='train/'),
                 pipeline=train_pipeline))

max_iters = 300
optimizer = dict(type='SGD', lr=0.06 * 8 / 256, momentum=0.9, weight_decay=1e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0, end=max_iters,
         eta_min=0.),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2))
log_processor = dict(window_size=10, by_epoch=False)
