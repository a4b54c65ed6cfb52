# Vanilla supervised twin of mcl-sup_r50-fpn_8xb32-sgd-coslr-100e_in1k.py: the same backbone
# (mmdet ResNet-50, identical keys), data, schedule and optimizer, no montage (GAP + linear).
_base_ = './mcl-sup_r50-fpn_8xb32-sgd-coslr-100e_in1k.py'
model = dict(
    _delete_=True,
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=1000,
                           mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           to_rgb=True),
    backbone=dict(type='mmdet.ResNet', depth=50, out_indices=(3, ), frozen_stages=-1,
                  norm_cfg=dict(type='SyncBN', requires_grad=True), norm_eval=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=2048,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
