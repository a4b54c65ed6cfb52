# Vanilla twin of the MCL-sup CPU demo: same data, backbone (mmdet ResNet-18), schedule; GAP +
# linear classifier, no montage.
_base_ = './mcl-sup_r18-fpn_1xb16-sgd-coslr-300i_cpu-demo_objects.py'
model = dict(
    _delete_=True,
    type='ImageClassifier',
    data_preprocessor=dict(type='ClsDataPreprocessor', num_classes=_base_.num_classes,
                           mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                           to_rgb=True),
    backbone=dict(type='mmdet.ResNet', depth=18, out_indices=(3, ), frozen_stages=-1,
                  norm_cfg=dict(type='BN', requires_grad=True), norm_eval=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=_base_.num_classes, in_channels=512,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, )))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='CropToBox'),
    *_base_.view_pipeline,  # one view per image instead of S
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
