# MCL's views (./imagenet_mcl.py) at CPU-demo size on the small local photo set data/pretrain
# (tools/prepare_data.py): S = 3 levels, 128-px views, crops of 20-100% of the image (the paper's
# 8% lower bound leaves too little of a small photo), pillow's default interpolation, 2 workers.
_base_ = './imagenet_mcl.py'
num_levels = 3
img_size = 128
byol_common_ops = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.0),
         backend='pillow'),
    *_base_.byol_common_ops[1:],  # flip, colour jitter, grayscale
]
# the base's per-view tails: blur p = 1.0 / blur p = 0.1 + solarize p = 0.2
view_pipeline1 = byol_common_ops + _base_.view_pipeline1[len(_base_.byol_common_ops):]
view_pipeline2 = byol_common_ops + _base_.view_pipeline2[len(_base_.byol_common_ops):]
# the base's pipeline with S views per branch from the views above
train_pipeline = [
    dict(step, num_views=[num_levels, num_levels], transforms=[view_pipeline1, view_pipeline2])
    if step.type == 'MultiView' else step for step in _base_.train_pipeline
]
# Iteration-based schedules count iterations, not epochs: an infinite sampler never runs out
# (no "Reach the end of the dataloader" restart on a small photo set), reshuffled per pass.
train_dataloader = dict(
    num_workers=2,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(_delete_=True, type='UnlabeledImageDataset', data_root='data/pretrain',
                 ann_file='meta/train.txt', data_prefix=dict(img_path='train/'),
                 pipeline=train_pipeline))
