# CPU demo: ResNet-18-FPN, 128-px views, S = 3 levels (tiles of 128/64/32 px, each 4x4 cells of
# P5/P4/P3), batch 16 (= 4**2, fills the level-2 montages), iteration-based so a run takes
# minutes on a laptop. Data: data/pretrain from tools/prepare_data.py.
_base_ = [
    '../_base_/models/mcl_r50-fpn.py',
    '../_base_/datasets/imagenet_mcl.py',
    '../_base_/default_runtime.py',
]
num_levels = 3
img_size = 128
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    num_levels=num_levels,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    neck=dict(in_channels=[64, 128, 256, 512], norm_cfg=norm_cfg),
    tile_pooler=dict(out_size=img_size // 32),
    tile_head=dict(norm_cfg=norm_cfg),
    projector=dict(hid_channels=1024, norm_cfg=dict(type='BN1d')),
    head=dict(temperature=0.2,
              predictor=dict(hid_channels=1024, norm_cfg=dict(type='BN1d'))))

# BYOL's two asymmetric views: the same crop/flip/colour ops, blur p = 1.0 / 0.1, solarize
# p = 0 / 0.2 (view 1 simply has no Solarize step).
byol_common_ops = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.0),
         backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomApply',
         transforms=[dict(type='HueSafeColorJitter', brightness=0.4, contrast=0.4, saturation=0.2,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
]
view_pipeline1 = byol_common_ops + [
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=1.0),
]
view_pipeline2 = byol_common_ops + [
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.1),
    dict(type='Solarize', thr=128, prob=0.2),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=[num_levels, num_levels],
         transforms=[view_pipeline1, view_pipeline2]),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=16,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    dataset=dict(_delete_=True, type='UnlabeledImageDataset', data_root='data/pretrain',
                 ann_file='meta/train.txt', data_prefix=dict(img_path='train/'),
                 pipeline=train_pipeline))

max_iters = 300
optimizer = dict(type='LARS', lr=1.0 * 16 / 256 * 4, momentum=0.9, weight_decay=1e-5)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=dict(max_norm=500),
    paramwise_cfg=dict(
        custom_keys={
            'bn': dict(decay_mult=0, lars_exclude=True),
            'bias': dict(decay_mult=0, lars_exclude=True),
            'downsample.1': dict(decay_mult=0, lars_exclude=True),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=max_iters // 10),
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
