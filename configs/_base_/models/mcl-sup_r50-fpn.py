# Supervised MCL: ResNet-50 + FPN + shared 4-conv head + one linear classifier for all levels.
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='MCLSupervised',
    num_levels=4,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(type='mmdet.ResNet', depth=50, out_indices=(0, 1, 2, 3), frozen_stages=-1,
                  norm_cfg=norm_cfg, norm_eval=False),
    neck=dict(type='mmdet.FPN', in_channels=[256, 512, 1024, 2048], out_channels=256,
              num_outs=4, norm_cfg=norm_cfg),
    assembler=dict(type='MontageAssembler', remainder='pad'),
    tile_pooler=dict(type='TilePooler', featmap_strides=(4, 8, 16, 32), out_size=7),
    tile_head=dict(type='ConvTileHead', in_channels=256, conv_channels=256, num_convs=4,
                   norm_cfg=norm_cfg),
    head=dict(type='MultiLevelClsHead', num_classes=1000, in_channels=256,
              level_weights=None,  # 1 / 2**(s + 1)
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
