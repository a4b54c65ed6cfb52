# Single-GPU variant of the official recipe: plain BN, batch 64 (level 3 then has 64 / 32 = 2
# montages; the official montage counts need a batch of at least 32), lr scaled linearly
# (1.0 * 64 / 256; the cosine still ends at the official absolute 1e-4).
_base_ = './mcl_r50-fpn_16xb256-lars-coslr-100e_in1k.py'
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
