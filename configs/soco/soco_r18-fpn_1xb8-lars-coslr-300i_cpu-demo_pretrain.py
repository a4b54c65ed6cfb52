# CPU demo: ResNet-18-FPN, views V1 128 / V2 128 / V3 64 (scale thresholds 48/96/192 scaled by
# 128/224), K = 4, batch 8, LARS lr = 1.0 * 8 / 256 x 4, 300 iterations, so a run takes minutes
# on a laptop. Data: data/pretrain from tools/prepare_data.py, then its proposals (the command is
# in ../_base_/datasets/pretrain_soco_cpu-demo.py).
# Cheaper than the official recipe of the paper-size configs: each box pooled on its level only
# (pool_all_levels=False: one head pass per view instead of one per level, ~4x less head work)
# and the paper's views (V3 = V2 downsampled, no Cutout); see configs/soco/README.md.
_base_ = [
    '../_base_/models/soco_r50-fpn.py',
    '../_base_/datasets/pretrain_soco_cpu-demo.py',
    '../_base_/schedules/lars.py',
    '../_base_/schedules/coslr-300i_cpu-demo.py',
    '../_base_/default_runtime_cpu-demo.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pool_all_levels=False,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    neck=dict(in_channels=[64, 128, 256, 512], norm_cfg=norm_cfg),
    roi_pooler=dict(scale_thresholds=[t * _base_.img_size / 224 for t in (48, 96, 192)]),
    tile_head=dict(norm_cfg=norm_cfg),  # 4conv1fc 256 -> fc 1024, as Mask R-CNN's box head
    projector=dict(hid_channels=1024, norm_cfg=dict(type='BN1d')),
    head=dict(predictor=dict(hid_channels=1024, norm_cfg=dict(type='BN1d'))))
train_dataloader = dict(batch_size=8)
optimizer = dict(lr=1.0 * 8 / 256 * 4)
optim_wrapper = dict(optimizer=optimizer)
