# Mask R-CNN R50-FPN on Cityscapes instance segmentation (fine annotations, 8 classes): the
# Cityscapes transfer of DetCo and MCL, which follow MoCo's detectron2 recipe
# (detectron2 configs/Cityscapes/mask_rcnn_R_50_FPN.yaml, with SyncBN): 8 GPUs x 1 image = batch
# 8, SGD lr 0.01, momentum 0.9, wd 1e-4, 24k iterations, x0.1 at 18k, 1000-iteration warm-up,
# training short side chosen from 800..1024 (step 32, long side <= 2048), test 1024 x 2048;
# AP / AP50 of the masks on val. Transfer protocol of mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py
# (SyncBN everywhere, all stages trainable, 4conv1fc box head).
# Built from the protocol model base and mmdet's Cityscapes data / runtime / schedule bases (as
# mmdet's cityscapes/mask-rcnn_r50_fpn_1x_cityscapes.py is, whose 8 classes and SmoothL1 box loss
# it keeps); that config's COCO-trained load_from and 8 x 8 epochs are not used: load_from is the
# converted pre-training checkpoint and the schedule is detectron2's.
# The Cityscapes AP needs `cityscapesscripts` (mmdet's CityScapesMetric); data under
# data/cityscapes/ converted with mmdet's tools/dataset_converters/cityscapes.py.
#   python tools/convert_to_mmdet.py PRETRAIN.pth CONVERTED.pth --config THIS_CONFIG
#   mim train mmdet THIS_CONFIG --launcher pytorch -G 8 --cfg-options load_from=CONVERTED.pth
# Twins under the same protocol: *_supervised (torchvision ImageNet weights), *_random-init.
_base_ = [
    '../../_base_/models/mask-rcnn_r50-fpn_syncbn-4conv1fc.py',
    'mmdet::_base_/datasets/cityscapes_instance.py', 'mmdet::_base_/default_runtime.py',
    'mmdet::_base_/schedules/schedule_1x.py'
]

model = dict(
    roi_head=dict(
        bbox_head=dict(
            num_classes=8, loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0)),
        mask_head=dict(num_classes=8)))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(
        type='RandomChoiceResize',
        scales=[(2048, 800), (2048, 832), (2048, 864), (2048, 896), (2048, 928), (2048, 960),
                (2048, 992), (2048, 1024)],
        keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=1,
    sampler=dict(_delete_=True, type='InfiniteSampler', shuffle=True),
    dataset=dict(dataset=dict(pipeline=train_pipeline)))

max_iters = 24000
train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=8000)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=1000),
    dict(
        type='MultiStepLR',
        begin=0,
        end=max_iters,
        by_epoch=False,
        milestones=[18000],
        gamma=0.1)
]
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=0.0001))
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=8000, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)

auto_scale_lr = dict(enable=False, base_batch_size=8)

load_from = None  # --cfg-options load_from=CONVERTED.pth
