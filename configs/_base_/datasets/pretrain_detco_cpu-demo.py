# DetCo's views (./detco_imagenet.py) at CPU-demo size on the small local photo set data/pretrain
# (tools/prepare_data.py): global views 112 px; jigsaw crop 96 px -> 3x3 cells of 32 px -> 24-px
# patches (the paper's 64/85 ratio), 2 workers.
_base_ = './detco_imagenet.py'
img_size = 112
jigsaw_crop_size = 96
patch_size = 24
global_pipeline = [
    dict(type='RandomResizedCrop', scale=img_size, crop_ratio_range=(0.2, 1.), backend='pillow'),
    *_base_.global_pipeline[1:],  # colour jitter, grayscale, blur, flip
]
local_pipeline = [
    dict(_base_.local_pipeline[0], crop_size=jigsaw_crop_size, patch_size=patch_size),
]
train_pipeline = [
    dict(step, global_pipeline=global_pipeline, local_pipeline=local_pipeline)
    if step.type == 'GlobalLocalViews' else step for step in _base_.train_pipeline
]
# Iteration-based schedules count iterations, not epochs: an infinite sampler never runs out
# (no "Reach the end of the dataloader" restart on a small photo set), reshuffled per pass.
train_dataloader = dict(
    num_workers=2,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(_delete_=True, type='UnlabeledImageDataset', data_root='data/pretrain',
                 ann_file='meta/train.txt', data_prefix=dict(img_path='train/'),
                 pipeline=train_pipeline))
