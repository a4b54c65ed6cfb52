# SoCo R50-C4 variant (paper §3.2, Table 2): no FPN; every proposal is RoI-aligned (14x14) on C4
# (end of res4, stride 16); the head is res5 (mmdet ResLayer, the shared head of Mask R-CNN C4,
# named tile_head so the converter maps it to roi_head.shared_head) + global average pooling;
# V3 is dropped (V1 and V2 only). Official recipe (tools/SoCo_C4_100ep.sh, ImageAsymBboxCutout):
# crop scale 0.6-1, visible-part boxes, no box jitter, in-box Cutout on V2; the loss matches
# boxes by proposal id per image (pool_all_levels on the single C4 map).
_base_ = './soco_r50-fpn_16xb128-lars-coslr-100e_in1k.py'
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    backbone=dict(num_stages=3, strides=(1, 2, 2), dilations=(1, 1, 1), out_indices=(2, )),
    neck=None,
    roi_pooler=dict(featmap_strides=(16, ), out_size=14, scale_thresholds=()),
    tile_head=dict(_delete_=True, type='mmdet.ResLayer', depth=50, stage=3, stride=2,
                   norm_cfg=norm_cfg, norm_eval=False),
    projector=dict(in_channels=2048))
color_view1 = _base_.color_view1
color_view2 = _base_.color_view2
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='SoCoViews', num_proposals=4, v1_size=224, v2_size=224, v3_size=None,
             crop_scale=(0.6, 1.0), crop_ratio=(3 / 4, 4 / 3), box_mode='visible_part',
             max_tries=5, jitter_prob=0.0, flip_prob=0.5,
             view_pipelines=[color_view1, color_view2 + [_base_.cutout]]),
        dict(type='PackSoCoInputs'),
    ]))
