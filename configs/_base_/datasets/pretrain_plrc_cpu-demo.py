# PLRC's views (./plrc_imagenet.py) at CPU-demo size on the small local photo set data/pretrain
# (tools/prepare_data.py): 96-px views, region masks at R = 24 (must equal model.resolution of
# the leaf config), 2 workers.
_base_ = './plrc_imagenet.py'
img_size = 96
train_pipeline = [
    dict(step, size=img_size, mask_size=24) if step.type == 'GridRegionTwoView' else step
    for step in _base_.train_pipeline
]
train_dataloader = dict(
    num_workers=2,
    dataset=dict(_delete_=True, type='UnlabeledImageDataset', data_root='data/pretrain',
                 ann_file='meta/train.txt', data_prefix=dict(img_path='train/'),
                 pipeline=train_pipeline))
