# Baseline for the demo protocol (tools/run_protocol.py): mmpretrain's BYOL with a ResNet-18 on the
# same data, views, batch, optimizer and schedule as the MCL CPU demo
# (configs/mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py), so the two differ only in
# the algorithm: one global view pair per image instead of S montage levels, no FPN and no 4-conv
# head (only the backbone transfers). The model is mmpretrain's own `BYOL` (ResNet + NonLinearNeck
# + LatentPredictHead); the projector/predictor widths follow the MCL demo (1024 -> 256).
_base_ = ['../mcl/mcl_r18-fpn_1xb16-lars-coslr-300i_cpu-demo_pretrain.py']

model = dict(
    _delete_=True,
    type='mmpretrain.BYOL',
    base_momentum=0.01,
    data_preprocessor=dict(
        type='mmpretrain.SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(type='mmpretrain.ResNet', depth=18, norm_cfg=dict(type='BN'),
                  zero_init_residual=False),
    neck=dict(type='mmpretrain.NonLinearNeck', in_channels=512, hid_channels=1024,
              out_channels=256, num_layers=2, with_bias=True, with_last_bn=False,
              with_avg_pool=True),
    head=dict(
        type='mmpretrain.LatentPredictHead',
        predictor=dict(type='mmpretrain.NonLinearNeck', in_channels=256, hid_channels=1024,
                       out_channels=256, num_layers=2, with_bias=True, with_last_bn=False,
                       with_avg_pool=False),
        loss=dict(type='mmpretrain.CosineSimilarityLoss')))

# One view per branch (BYOL) instead of S per branch (MCL); the view pipelines are the MCL demo's.
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiView', num_views=[1, 1],
         transforms=[{{_base_.view_pipeline1}}, {{_base_.view_pipeline2}}]),
    dict(type='PackInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
find_unused_parameters = False  # BYOL uses every parameter
