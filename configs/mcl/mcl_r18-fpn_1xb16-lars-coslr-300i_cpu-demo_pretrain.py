# CPU demo: ResNet-18-FPN, 128-px views, S = 3 levels (tiles of 128/64/32 px, each 4x4 cells of
# P5/P4/P3), batch 16 (= 4**2, fills the level-2 montages), LARS lr = 1.0 * 16 / 256 x 4,
# 300 iterations, so a run takes minutes on a laptop. Data: data/pretrain from
# tools/prepare_data.py. Ablations (other S, loss modes b/c/d): ./ablations/.
# Cheaper than the official recipe of the paper-size configs (./README.md, fidelity table): one
# backbone pass and one tile-head pass for both branches and all levels (joint BN statistics),
# one predictor, ceil(B / 4**s) montages, anti-aliased bilinear downsampling, SPE, fp32, warm-up
# then cosine to 0; crop (0.2, 1) bilinear as the official recipe.
_base_ = [
    '../_base_/models/mcl_r50-fpn.py',
    '../_base_/datasets/pretrain_mcl_cpu-demo.py',
    '../_base_/schedules/lars.py',
    '../_base_/schedules/coslr-300i_cpu-demo.py',
    '../_base_/default_runtime_cpu-demo.py',
]
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    num_levels=_base_.num_levels,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    # S = 3 reads P3-P5 only: an FPN without P2 (start_level=1; the converter re-aligns it to
    # mmdet's P2-P5 FPN), so every parameter gets a gradient and DDP needs no
    # find_unused_parameters
    neck=dict(in_channels=[64, 128, 256, 512], start_level=4 - _base_.num_levels,
              num_outs=_base_.num_levels, norm_cfg=norm_cfg),
    tile_pooler=dict(featmap_strides=[4, 8, 16, 32][4 - _base_.num_levels:],
                     out_size=_base_.img_size // 32),
    tile_head=dict(norm_cfg=norm_cfg),
    projector=dict(hid_channels=1024, norm_cfg=dict(type='BN1d')),
    head=dict(temperature=0.2,
              predictor=dict(hid_channels=1024, norm_cfg=dict(type='BN1d'))))
train_dataloader = dict(batch_size=16)
optimizer = dict(lr=1.0 * 16 / 256 * 4)
optim_wrapper = dict(optimizer=optimizer)
find_unused_parameters = False
