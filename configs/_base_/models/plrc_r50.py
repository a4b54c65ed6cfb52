# PLRC on asymmetric MoCo v2 with ResNet-50 (paper defaults: 4x4 grid, N = 16 regions,
# P = 16 points, R = 56 (Table 3f default; Sec. 4.1 says 64), tau_t = 0.07, tau_s = 0.1,
# alpha = 0.5, beta = 0.7). MoCo v2 parts: BN with shuffle BN across GPUs, queue 65536 x 128,
# tau = 0.2, momentum 0.999. Distillation teacher: the momentum encoder at the student point's
# image position on a third crop (teacher='co_located', the official code's construction; the
# pipeline's teacher_view). Leaf configs add PLRCDistillWarmupHook to custom_hooks.
norm_cfg = dict(type='BN', requires_grad=True)
grid_size = 4
resolution = 56

model = dict(
    type='PLRC',
    grid_size=grid_size,
    num_regions=16,
    num_points=16,
    resolution=resolution,
    # MoCo queue of image keys (owned by the algorithm, like DetCo's)
    queue_len=65536,
    feat_dim=128,
    # mmengine EMA convention: target = (1 - m) * target + m * online; MoCo v2's 0.999.
    momentum=0.001,
    shuffle_bn=True,
    teacher='co_located',
    data_preprocessor=dict(
        type='SelfSupDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        to_rgb=True),
    backbone=dict(
        type='mmdet.ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        zero_init_residual=False,
        style='pytorch'),
    # image-level embedding z of the MoCo loss (pooled C5 -> MLP)
    neck=dict(
        type='MoCoV2Neck', in_channels=2048, hid_channels=2048, out_channels=128,
        with_avg_pool=True),
    # the same MLP as 1x1 convolutions on C5 -> point embeddings (separate weights)
    projector=dict(type='PLRCDenseNeck', in_channels=2048, hid_channels=2048, out_channels=128),
    head=dict(
        type='PLRCHead',
        image_temperature=0.2,
        point_temperature=0.2,
        student_temperature=0.1,
        teacher_temperature=0.07,
        alpha=0.5,
        beta=0.7))
