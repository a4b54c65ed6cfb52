# MCL as the official code trains it (GuoQiushan/MCL @ 1912aa9, configs/selfsup/MCL/MCL.py and
# openselfsup/models/mcl.py; fidelity table: configs/mcl/README.md). On top of ./mcl_r50-fpn.py:
# - one backbone/FPN pass per view branch (BN statistics per branch), mcl.py:177-183;
# - tile head + projector once per branch and FPN level over every montage of the branch cut into
#   that level's tile grid (BN statistics per level, unused tiles included), necks.py:437-465;
# - one predictor per level (fc-BN-ReLU-fc with biases), latent_pred_head.py:60-95;
# - B / [1, 4, 16, 32] montages per level (level 3 shows each image twice), nearest downsampling,
#   level 0 not shuffled, mcl.py:81-139; level weights [1/2, 1/4, 1/8, 1/8], MCL.py:44;
# - no positional embedding (the official ResNet has none; the paper's SPE: mcl-paper_* config).
_base_ = './mcl_r50-fpn.py'
model = dict(
    bn_scope='per_branch',
    tile_bn_scope='per_level',
    backbone=dict(stem_pos_embed=dict(type='none')),
    assembler=dict(mode='nearest', montage_counts='official'),
    head=dict(
        per_level_predictor=True,
        level_weights=[1 / 2, 1 / 4, 1 / 8, 1 / 8],
        predictor=dict(with_bias=True, with_last_bias=True)))
