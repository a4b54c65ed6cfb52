# SoCo, 100 epochs, the paper's reading instead of the official code (what this plugin trained
# before issue 17): V3 = V2 downsampled to 112, proposals >= 50 % visible and clipped alike in
# every view (easier positives: V1-V2 box IoU 1.00 without jitter, 0.81 in the official views),
# box jitter on every view around the centre, no Cutout; each box pooled on its level only, one
# head / projector / predictor BN batch per view (pool_all_levels=False). Optimisation as the
# official recipe (./soco_r50-fpn_16xb128-lars-coslr-100e_in1k.py).
_base_ = './soco_r50-fpn_16xb128-lars-coslr-100e_in1k.py'
model = dict(pool_all_levels=False)
train_dataloader = dict(dataset=dict(pipeline=[
    dict(type='LoadImageFromFile'), _base_.paper_views, dict(type='PackSoCoInputs')]))
