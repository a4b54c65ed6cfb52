# Smoke-test variant of mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py for tests
# and CI: 8 training images at ~160x120, batch 4 (2 iterations, 1 epoch), 4 validation images, no
# worker processes, one checkpoint. On the --small build of tools/prepare_data.py (other classes)
# set metainfo.classes of the three dataloaders and the heads' num_classes to its classes.txt;
# the dataset names the mismatch otherwise.
# Another data folder D (same layout): --cfg-options train_dataloader.dataset.data_root=D
# val_dataloader.dataset.data_root=D test_dataloader.dataset.data_root=D
# val_evaluator.ann_file=D/annotations/instances_val.json test_evaluator.ann_file=(same).
# Pass load_from=CONVERTED.pth to exercise the hand-off. AP values are meaningless here.
_base_ = './mask-rcnn_r18-fpn_bn-4conv1fc_1xb4-1x_cpu-demo_objects-coco.py'

img_scale = (160, 120)
batch_size = 4
max_epochs = 1
num_train_images = 8
num_val_images = 4

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(indices=num_train_images, pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=batch_size,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(indices=num_val_images, pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=max_epochs, val_interval=1)
param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=1))
