# MCL with ResNet-50 + FPN (P2-P5) + shared 4-conv head, S = 4 levels (paper default).
norm_cfg = dict(type='SyncBN', requires_grad=True)

model = dict(
    type='MCL',
    num_levels=4,
    # mmengine EMA convention: target = (1 - m) * target + m * online; the paper's 0.99 -> 1.
    base_momentum=0.01,
    end_momentum=0.0,
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='PEResNet',
        depth=50,
        out_indices=(0, 1, 2, 3),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        zero_init_residual=False,
        stem_pos_embed=dict(type='spe')),  # 'spe' | 'csg' | 'lpe' | 'none'
    neck=dict(
        type='mmdet.FPN',
        in_channels=[256, 512, 1024, 2048],
        out_channels=256,
        num_outs=4,
        norm_cfg=norm_cfg),
    assembler=dict(type='MontageAssembler', remainder='pad'),
    # level s -> P(5-s); exact 7x7 crop for 224-px inputs, RoIAlign otherwise.
    tile_pooler=dict(type='TilePooler', featmap_strides=(4, 8, 16, 32), out_size=7),
    tile_head=dict(type='ConvTileHead', in_channels=256, conv_channels=256, num_convs=4,
                   norm_cfg=norm_cfg),
    projector=dict(
        type='NonLinearNeck',
        in_channels=256,
        hid_channels=2048,
        out_channels=256,
        num_layers=2,
        with_bias=False,
        with_last_bn=True,
        with_last_bn_affine=False,
        with_avg_pool=False,
        norm_cfg=dict(type='SyncBN')),
    head=dict(
        type='MultiLevelContrastiveHead',
        loss_mode='a',
        level_weights=None,  # 1 / 2**(s + 1)
        temperature=1.0,
        scale_by_temperature=True,
        predictor=dict(
            type='NonLinearNeck',
            in_channels=256,
            hid_channels=2048,
            out_channels=256,
            num_layers=2,
            with_bias=False,
            with_last_bn=False,
            with_avg_pool=False,
            norm_cfg=dict(type='SyncBN'))))
