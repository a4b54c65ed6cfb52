# PLRC's views (./plrc_imagenet.py) at CPU-demo size on the small local photo set data/pretrain
# (tools/prepare_data.py): 96-px views, region masks at R = 24 (must equal model.resolution of
# the leaf config), 2 workers. Unlike the paper-size configs the contrasted crops are redrawn
# until they overlap by >= 50% of the smaller crop (min_overlap=0.5): more common regions per
# image for the short run.
_base_ = './plrc_imagenet.py'
img_size = 96
train_pipeline = [
    dict(step, size=img_size, mask_size=24, min_overlap=0.5) if step.type == 'GridRegionTwoView' else step
    for step in _base_.train_pipeline
]
# Iteration-based schedules count iterations, not epochs: an infinite sampler never runs out
# (no "Reach the end of the dataloader" restart on a small photo set), reshuffled per pass.
train_dataloader = dict(
    num_workers=2,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(_delete_=True, type='UnlabeledImageDataset', data_root='data/pretrain',
                 ann_file='meta/train.txt', data_prefix=dict(img_path='train/'),
                 pipeline=train_pipeline))
