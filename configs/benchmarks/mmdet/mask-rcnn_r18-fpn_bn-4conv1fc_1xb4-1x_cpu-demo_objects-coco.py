# CPU demo of the fine-tuning hand-off: Mask R-CNN ResNet-18 FPN with the 4conv1fc box head on the
# small COCO-format set data/objects_coco (tools/prepare_data.py). Plain BN (one process; SyncBN
# needs a process group), all stages trainable, images around 320x240, batch 4,
# SGD lr 0.02 x 4/16. The pre-trained weights come through load_from:
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   python tools/check_pretrained.py THIS_CONFIG CONVERTED.pth
#   python $MMDET/.mim/tools/train.py THIS_CONFIG --cfg-options load_from=CONVERTED.pth
# The *_random-init twin is identical except that it never takes load_from (the lower bound).
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

# ---- knobs ----------------------------------------------------------------------------------
# Class names of data/objects_coco, as written to data/objects_coco/classes.txt by
# tools/prepare_data.py (configs cannot read files: keep the two in sync).
classes = ('bird', 'coin', 'fish', 'flower', 'fruit_vegetable', 'insect', 'instrument', 'mammal',
           'vehicle')
num_classes = len(classes)
data_root = 'data/objects_coco/'
img_scale = (320, 240)
batch_size = 4
max_epochs = 12  # ~400 train images / batch 4 = ~100 iterations per epoch
base_lr = 0.02 * batch_size / 16
norm_cfg = dict(type='BN', requires_grad=True)

# ---- model ----------------------------------------------------------------------------------
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], norm_cfg=norm_cfg),
    roi_head=dict(
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            conv_out_channels=256,
            norm_cfg=norm_cfg,
            num_classes=num_classes),
        mask_head=dict(norm_cfg=norm_cfg, num_classes=num_classes)),
    # 128 sampled RoIs per image instead of 512: the images hold ~4 objects, and the 4conv head
    # costs ~1 GFLOP per RoI (forward), which dominates a CPU iteration.
    train_cfg=dict(rcnn=dict(sampler=dict(num=128))))

# ---- data -----------------------------------------------------------------------------------
metainfo = dict(classes=classes)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomResize', scale=img_scale, ratio_range=(0.8, 1.2), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
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
# mmdet's CocoDataset + a clear error when `classes` do not match the annotation file
# (registered in mmdet's registry by mcl_plugin.datasets)
coco_dataset = dict(type='CheckedCocoDataset', data_root=data_root, metainfo=metainfo)
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    dataset=dict(
        coco_dataset,
        ann_file='annotations/instances_train.json',
        data_prefix=dict(img='train/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=8),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    dataset=dict(
        coco_dataset,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(
    ann_file=data_root + 'annotations/instances_val.json', metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# ---- schedule -------------------------------------------------------------------------------
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_epochs,
        by_epoch=True,
        milestones=[int(max_epochs * 2 / 3), int(max_epochs * 11 / 12)],
        gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(lr=base_lr))
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(dist_cfg=dict(backend='gloo'))

load_from = None  # --cfg-options load_from=CONVERTED.pth
