# MCL, official recipe (GuoQiushan/MCL configs/selfsup/MCL/MCL.py; fidelity table in ./README.md):
# ResNet-50-FPN + 4-conv head, S = 4, loss mode (a), no positional embedding, BN statistics per
# view branch (backbone) and per FPN level (tile head, projector), one predictor per level,
# B / [1, 4, 16, 32] montages, level weights [1/2, 1/4, 1/8, 1/8], nearest downsampling,
# RandomResizedCrop scale (0.2, 1) bilinear; ImageNet-1k, 100 epochs, LARS lr = 1.0 * 4096 / 256
# = 16, wd 1e-5, gradient clip 500, mixed precision, cosine over all iterations to 1e-4 with a
# 10-epoch warm-up; SyncBN, global batch 4096 = 16 GPUs x 256 (official: 32 x 128).
# The paper's reading (SPE, one predictor, ...): ./mcl-paper_r50-fpn_16xb256-lars-coslr-100e_in1k.py
_base_ = [
    '../_base_/models/mcl_r50-fpn_official.py',
    '../_base_/datasets/imagenet_mcl.py',
    '../_base_/schedules/mcl_lars_coslr-official_100e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=256)
optimizer = dict(lr=16.0)
optim_wrapper = dict(optimizer=optimizer)
