# MCL's views (./imagenet_mcl.py) with the paper's reading of "the BYOL augmentation pipeline":
# BYOL's RandomResizedCrop, scale (0.08, 1), bicubic; the official code crops (0.2, 1) bilinear.
_base_ = './imagenet_mcl.py'
byol_common_ops = [
    dict(_base_.byol_common_ops[0], crop_ratio_range=(0.08, 1.0), interpolation='bicubic'),
    *_base_.byol_common_ops[1:],
]
view_pipeline1 = byol_common_ops + _base_.view_pipeline1[len(byol_common_ops):]
view_pipeline2 = byol_common_ops + _base_.view_pipeline2[len(byol_common_ops):]
train_pipeline = [
    dict(step, transforms=[view_pipeline1, view_pipeline2]) if step.type == 'MultiView' else step
    for step in _base_.train_pipeline
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
