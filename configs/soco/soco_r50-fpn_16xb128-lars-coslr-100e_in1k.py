# SoCo paper recipe (Table 1, 100 epochs): ResNet-50-FPN + 4conv1fc head, ImageNet-1k with
# selective-search proposals, V1 224 / V2 224 / V3 112, K = 4, global batch 2048 = 16 GPUs x 128
# (32 x 64 works too: set train_dataloader.batch_size=64), LARS lr = 1.0 * 2048 / 256 = 8.0,
# wd 1e-5, 10-epoch linear warm-up + cosine, SyncBN, EMA 0.99 -> 1.
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
optim_wrapper = dict(optimizer=optimizer)
auto_scale_lr = dict(base_batch_size=2048)
