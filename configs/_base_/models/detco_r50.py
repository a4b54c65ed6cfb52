# DetCo on MoCo v2: ResNet-50 res2..res5, per-stage global + local MLP heads, 8 queues.
# Values the paper does not state are MoCo v2's (queue 65536, 128-d, T = 0.2, key momentum
# 0.999). MLP hidden width = input width ('in'), as MoCo v2's 2048 -> 2048 -> 128 and the public
# DetCo code (C -> C global, 9C -> 9C local: 451 M parameters in the 4 local heads of R50).
# A fixed width (e.g. hid_channels=2048, the class default) narrows every head to it.
# Ablations (Table 1): HIC only = head.loss_terms=('gg',) + neck.with_local=False (4 queues,
# no patch sets needed); MoCo v2 = additionally head.loss_weights=(0, 0, 0, 1).
# MoCo v2's codebase (which DetCo builds on): per-GPU BN + shuffle-BN. SyncBN would pool the
# key encoder's statistics over all GPUs and make the shuffle a no-op.
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    type='DetCo',
    queue_len=65536,
    feat_dim=128,
    # mmengine EMA convention: key = (1 - m) * key + m * query, so MoCo's 0.999 is m = 0.001.
    momentum=0.001,
    shuffle_bn=True,
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
        type='DetCoNeck',
        in_channels=(256, 512, 1024, 2048),
        hid_channels='in',  # the local heads follow (local_hid_channels=None)
        out_channels=128,
        num_patches=9),
    head=dict(
        type='DetCoHead',
        temperature=0.2,
        loss_weights=(0.1, 0.4, 0.7, 1.0),  # res2 .. res5, un-normalised (Table 15)
        loss_terms=('gg', 'll', 'gl')))
