# Vanilla twin of the MCL-sup CPU demo: same data, backbone (mmdet ResNet-18), schedule; GAP +
# linear classifier, no montage.
_base_ = './mcl-sup_r18-fpn_1xb16-sgd-cpu-demo_objects.py'
model = dict(
    _delete_=True,
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=9,
                           mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           to_rgb=True),
    backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(3, ), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=9, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropToBox'),
    dict(type='RandomResizedCrop', scale=128, crop_ratio_range=(0.5, 1.0), backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
