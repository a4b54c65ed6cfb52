# SoCo* (paper Table 1, last row): a fourth view V4 = another crop of V1 resized to 192, treated
# like V2 and V3 (loss terms V1<->V4 in both directions). Proposals must be visible in V2 and V4.
_base_ = './soco_r50-fpn_16xb128-lars-coslr-400e_in1k.py'
color_view1 = {{_base_.color_view1}}
color_view2 = {{_base_.color_view2}}
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='SoCoViews', num_proposals=4, v1_size=224, v2_size=224, v3_size=112,
             v4_size=192, crop_scale=(0.5, 1.0), crop_ratio=(3 / 4, 4 / 3), min_visible=0.5,
             jitter_prob=0.5, jitter_ratio=0.1, flip_prob=0.5,
             view_pipelines=[color_view1, color_view2, color_view2, color_view2]),
        dict(type='PackSoCoInputs'),
    ]))
