# SoCo with ResNet-50 + FPN (P2-P5, no P6) + RoIAlign 7x7 on the scale-selected level + the
# 4conv1fc R-CNN head (keys of mmdet Shared4Conv1FCBBoxHead) + BYOL projector / predictor.
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    type='SoCo',
    # mmengine EMA convention: target = (1 - m) * target + m * online, cosine-annealed;
    # the paper's tau 0.99 -> 1 is base_momentum=0.01 -> end_momentum=0.
    base_momentum=0.01,
    end_momentum=0.0,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        zero_init_residual=False),
    neck=dict(
        type='mmdet.FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=4,
        norm_cfg=norm_cfg),
    # sqrt(box area) in the view's pixels: <= 48 -> P2, <= 96 -> P3, <= 192 -> P4, else P5
    roi_pooler=dict(
        type='MultiLevelRoIPooler',
        featmap_strides=(4, 8, 16, 32),
        out_size=7,
        scale_thresholds=(48, 96, 192),
        sampling_ratio=0,
        aligned=True),
    tile_head=dict(
        type='ConvFCRoIHead',
        in_channels=256,
        conv_channels=256,
        num_convs=4,
        num_fcs=1,
        roi_feat_size=7,
        fc_out_channels=1024,
        norm_cfg=norm_cfg),
    projector=dict(
        type='NonLinearNeck',
        in_channels=1024,
        hid_channels=4096,
        out_channels=256,
        num_layers=2,
        with_bias=True,
        with_last_bn=False,
        with_avg_pool=False,
        norm_cfg=dict(type='SyncBN')),
    head=dict(
        type='SoCoHead',
        # -2 cos(p, z) (paper Eq. 5); shift_factor=2 gives BYOL's 2 - 2 cos, same gradients
        loss=dict(type='CosineSimilarityLoss', shift_factor=0.0, scale_factor=2.0),
        predictor=dict(
            type='NonLinearNeck',
            in_channels=256,
            hid_channels=4096,
            out_channels=256,
            num_layers=2,
            with_bias=True,
            with_last_bn=False,
            with_avg_pool=False,
            norm_cfg=dict(type='SyncBN'))))
