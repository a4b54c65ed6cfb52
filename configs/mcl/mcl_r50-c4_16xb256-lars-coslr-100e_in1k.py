# Non-FPN (C4) variant (paper §3.2, App. A.3): ResNet-50 up to C4 (stride 16), a pyramid made by
# resizing C4 (level s at stride 16 / 2**s, so every tile covers 14x14 cells), tiles pooled to
# 14x14 and passed through res5 (mmdet ResLayer, the R50-C4 Mask R-CNN shared head), GAP.
# The official code has no C4 variant: this takes every official choice of the FPN config except
# the per-level head pass over every montage (tile_bn_scope='per_level'), which here would run
# res5 on 64x as many 14x14 tiles at level 3 as the loss reads; the res5 head sees the loss tiles
# of both branches and all levels in one batch (tile_bn_scope='joint').
_base_ = './mcl_r50-fpn_16xb256-lars-coslr-100e_in1k.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    tile_bn_scope='joint',
    backbone=dict(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, )),
    neck=dict(_delete_=True, type='InterpolatedPyramid', scale_factors=(1, 2, 4, 8)),
    tile_pooler=dict(featmap_strides=(16, 8, 4, 2), out_size=14, level_to_feat=(0, 1, 2, 3)),
    tile_head=dict(_delete_=True, type='mmdet.ResLayer', depth=50, stage=3, stride=2,
                   norm_cfg=norm_cfg, norm_eval=False),
    projector=dict(in_channels=2048))
