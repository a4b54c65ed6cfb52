# SoCo with ResNet-50 + FPN (P2-P5, no P6) + RoIAlign 7x7 + the 4conv1fc R-CNN head (keys of
# mmdet Shared4Conv1FCBBoxHead) + BYOL projector / predictor, as the official code
# (hologerry/SoCo contrast/models/SoCo_FPN.py) trains it: every box RoI-aligned on every level,
# head / projector / predictor once per level (BN statistics per view, box set and level), the
# loss on each box's scale-selected level (pool_all_levels=True; False is the paper's reading:
# one level per box, one BN batch per view); zero-initialised last BN of every residual block;
# Linear biases in projector and predictor (mlps.py).
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    type='SoCo',
    # mmengine EMA convention: target = (1 - m) * target + m * online, cosine-annealed;
    # the paper's tau 0.99 -> 1 is base_momentum=0.01 -> end_momentum=0.
    base_momentum=0.01,
    end_momentum=0.0,
    pool_all_levels=True,
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
        zero_init_residual=True),
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
        with_last_bias=True,
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
            with_last_bias=True,
            with_avg_pool=False,
            norm_cfg=dict(type='SyncBN'))))
