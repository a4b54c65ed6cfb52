# CPU demo: ResNet-18, 96-px views (3x3 C5 map up-sampled to R = 24), batch 8, queue 512,
# iteration-based (300 iterations; distillation warm-up 100 iterations). Data: data/pretrain
# from tools/prepare_data.py. lr 4x the linear-scaling value (0.03 * 8 / 256) so a short run
# visibly learns.
_base_ = [
    '../_base_/models/plrc_r50.py',
    '../_base_/datasets/plrc_imagenet.py',
    '../_base_/default_runtime.py',
]
img_size = 96
resolution = 24
batch_size = 8
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    resolution=resolution,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    neck=dict(in_channels=512, hid_channels=512),
    projector=dict(in_channels=512, hid_channels=512),
    head=dict(queue_len=512))

view_pipeline = [
    dict(type='RandomApply',
         transforms=[dict(type='HueSafeColorJitter', brightness=0.4, contrast=0.4, saturation=0.4,
                          hue=0.1)],
         prob=0.8),
    dict(type='RandomGrayscale', prob=0.2, keep_channels=True,
         channel_weights=(0.114, 0.587, 0.2989)),
    dict(type='GaussianBlur', magnitude_range=(0.1, 2.0), magnitude_std='inf', prob=0.5),
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='GridRegionTwoView', size=img_size, grid_size=4, mask_size=resolution,
         crop_ratio_range=(0.2, 1.0), flip_prob=0.5, min_overlap=0.5, min_common_regions=1,
         max_tries=20, interpolation='bilinear', backend='pillow',
         transforms=[view_pipeline, view_pipeline]),
    dict(type='PackInputs', algorithm_keys=['region_masks', 'common_regions', 'crop_boxes',
                                            'flips']),
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    persistent_workers=True,
    drop_last=True,
    dataset=dict(_delete_=True, type='UnlabeledImageDataset', data_root='data/pretrain',
                 ann_file='meta/train.txt', data_prefix=dict(img_path='train/'),
                 pipeline=train_pipeline))

max_iters = 300
warmup_iters = 100
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03 * batch_size / 256 * 4, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_iters, by_epoch=False, begin=0, end=max_iters)
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
custom_hooks = [
    dict(type='NaNGuardHook'),
    dict(type='RandomStateHook'),
    dict(type='EMAAccumulationHook'),
    dict(type='PLRCDistillWarmupHook', warmup=warmup_iters, by_epoch=False),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2))
log_processor = dict(window_size=10, by_epoch=False)
