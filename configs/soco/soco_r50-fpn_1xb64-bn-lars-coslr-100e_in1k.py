# Single-GPU variant: plain BN everywhere (BN1d in projector/predictor), batch 64, lr scaled
# linearly (1.0 * 64 / 256). Expect lower transfer numbers than the 2048 batch of the paper
# (Table 5b: 512 -> 41.7 vs 2048 -> 42.3 AP^bb).
_base_ = './soco_r50-fpn_16xb128-lars-coslr-100e_in1k.py'
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    backbone=dict(norm_cfg=norm_cfg),
    neck=dict(norm_cfg=norm_cfg),
    tile_head=dict(norm_cfg=norm_cfg),
    projector=dict(norm_cfg=dict(type='BN1d')),
    head=dict(predictor=dict(norm_cfg=dict(type='BN1d'))))
train_dataloader = dict(batch_size=64)
optimizer = dict(lr=0.25)
optim_wrapper = dict(optimizer=optimizer)
