# SoCo, 100 epochs (paper Table 1: 42.3 AP^bb), the official recipe (hologerry/SoCo
# tools/SoCo_FPN_100ep.sh): ResNet-50-FPN + 4conv1fc head, per-level pooling / BN
# (pool_all_levels), ImageNet-1k with selective-search proposals, V1 224 / V2 224 / independent
# V3 112 with its own proposals, K = 4, V1-only top-left box jitter, in-box Cutout on V2 / V3,
# global batch 2048 = 16 GPUs x 128 (32 x 64 works too: set train_dataloader.batch_size=64),
# LARS lr = 1.0 * 2048 / 256 = 8.0, wd 1e-5, warm-up from lr / 100 over 10 epochs
# (--warmup_multiplier 100), cosine to 1e-6, no gradient clipping, SyncBN, EMA 0.99 -> 1,
# zero-initialised residual BN. The paper's reading: ./soco_r50-fpn_16xb128-paper-lars-coslr-
# 100e_in1k.py. Differences that remain: configs/soco/README.md (fidelity table).
# The official code trains with apex O1 mixed precision (SoCo issue #16: it matters for the
# numbers): --cfg-options optim_wrapper.type=AmpOptimWrapper optim_wrapper.loss_scale=dynamic
_base_ = [
    '../_base_/models/soco_r50-fpn.py',
    '../_base_/datasets/imagenet_soco.py',
    '../_base_/schedules/lars_coslr_100e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=128)
optimizer = dict(type='LARS', lr=8.0, momentum=0.9, weight_decay=1e-5)
optim_wrapper = dict(optimizer=optimizer, clip_grad=None)
auto_scale_lr = dict(base_batch_size=2048)
max_epochs = 100
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 10, by_epoch=True, begin=10,
         end=max_epochs, eta_min=1e-6, convert_to_iter_based=True),
]
