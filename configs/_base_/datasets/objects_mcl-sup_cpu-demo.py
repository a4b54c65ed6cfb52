# Supervised MCL's views (./imagenet_mcl-sup.py) at CPU-demo size on real photographed objects:
# crops of the instances of data/objects_coco (tools/prepare_data.py, 9 classes) with their class,
# S = 3 levels, 128-px views from 50-100% of the crop, 2 workers.
_base_ = './imagenet_mcl-sup.py'
num_levels = 3
img_size = 128
dataset_type = 'CocoObjectCropDataset'
data_root = 'data/objects_coco'
view_pipeline = [
    dict(_base_.view_pipeline[0], scale=img_size, crop_ratio_range=(0.5, 1.0)),
    *_base_.view_pipeline[1:],  # flip
]
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropToBox'),
    dict(type='MultiView', num_views=[num_levels], transforms=[view_pipeline]),
    dict(type='PackInputs'),
]
# Iteration-based schedules count iterations, not epochs: an infinite sampler never runs out
# (no "Reach the end of the dataloader" restart on a small photo set), reshuffled per pass.
train_dataloader = dict(
    num_workers=2,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(_delete_=True, type=dataset_type, data_root=data_root,
                 ann_file='annotations/instances_train.json',
                 data_prefix=dict(img_path='train/'), pipeline=train_pipeline))
