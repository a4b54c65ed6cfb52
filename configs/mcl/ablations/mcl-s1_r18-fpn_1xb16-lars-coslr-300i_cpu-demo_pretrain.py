# Ablation of the MCL CPU demo (paper Table 8, levels): S = 1 instead of 3, i.e. one montage level:
# one 128-px view per branch, its tile read from P5 only.
# Row 'mcl-s1' of tools/run_protocol.py. Everything else is the S = 3 demo.
_base_ = '../mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py'
num_levels = 1
# the FPN builds the S levels the tiles read (P(5-S+1)..P5), no unused parameters
model = dict(
    num_levels=num_levels,
    neck=dict(start_level=4 - num_levels, num_outs=num_levels),
    tile_pooler=dict(featmap_strides=[4, 8, 16, 32][4 - num_levels:]))
# the demo's pipeline with S views per branch
train_pipeline = [
    dict(step, num_views=[num_levels, num_levels]) if step.type == 'MultiView' else step
    for step in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
