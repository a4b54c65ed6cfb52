# SoCo* (paper Table 1, last row), the official recipe (tools/SoCo_FPN_Star_400ep.sh,
# ImageAsymBboxAwareMulti3ResizeExtraJitter1): V3 an independent 192-px crop with its own
# proposals, V4 = V2 resized to 112 with V2's proposals, no Cutout; loss terms V1<->Vj, j = 2..4.
# (The paper describes V4 as another 192-px crop of V1: SoCoViews(v3_size=112, v4_size=192,
# independent_v4=True).)
_base_ = './soco_r50-fpn_16xb128-lars-coslr-400e_in1k.py'
color_view1 = _base_.color_view1
color_view2 = _base_.color_view2
views = dict(_base_.views, v3_size=192, v4_size=112, independent_v4=False,
             view_pipelines=[color_view1, color_view2, color_view2, color_view2])
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), views, dict(type='PackSoCoInputs')]))
