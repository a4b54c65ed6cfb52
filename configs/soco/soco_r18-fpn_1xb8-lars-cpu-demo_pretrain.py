# CPU demo: ResNet-18-FPN, views V1 128 / V2 128 / V3 64 (scale thresholds 48/96/192 scaled by
# 128/224), K = 4, batch 8, iteration-based so a run takes minutes on a laptop.
# Data: data/pretrain from tools/prepare_data.py, then its proposals:
#   python tools/generate_proposals.py data/pretrain/train \
#       --ann-file data/pretrain/meta/train.txt \
#       --out data/pretrain/meta/train_proposals_ss-fast.json --workers 2 --max-side 320
_base_ = [
    '../_base_/models/soco_r50-fpn.py',
    '../_base_/datasets/imagenet_soco.py',
    '../_base_/default_runtime.py',
]
img_size = 128
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    neck=dict(in_channels=[64, 128, 256, 512], norm_cfg=norm_cfg),
    roi_pooler=dict(scale_thresholds=[t * img_size / 224 for t in (48, 96, 192)]),
    tile_head=dict(norm_cfg=norm_cfg),  # 4conv1fc 256 -> fc 1024, as Mask R-CNN's box head
    projector=dict(hid_channels=1024, norm_cfg=dict(type='BN1d')),
    head=dict(predictor=dict(hid_channels=1024, norm_cfg=dict(type='BN1d'))))

color_view1 = {{_base_.color_view1}}
color_view2 = {{_base_.color_view2}}
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='SoCoViews', num_proposals=4, v1_size=img_size, v2_size=img_size,
         v3_size=img_size // 2, crop_scale=(0.5, 1.0), crop_ratio=(3 / 4, 4 / 3),
         min_visible=0.5, min_box_size=8 * img_size / 224, jitter_prob=0.5, jitter_ratio=0.1,
         flip_prob=0.5, view_pipelines=[color_view1, color_view2, color_view2]),
    dict(type='PackSoCoInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    dataset=dict(data_root='data/pretrain', ann_file='meta/train.txt',
                 data_prefix=dict(img_path='train/'),
                 proposal_file='meta/train_proposals_ss-fast.json', pipeline=train_pipeline))

max_iters = 300
optimizer = dict(type='LARS', lr=1.0 * 8 / 256 * 4, momentum=0.9, weight_decay=1e-5)
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
