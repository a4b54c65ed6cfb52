# MCL paper recipe: ResNet-50-FPN + 4-conv head, S = 4, SPE, loss mode (a), ImageNet-1k,
# 100 epochs, LARS lr = 1.0 * 4096 / 256 = 16, wd 1e-5, 10-epoch warm-up + cosine, SyncBN,
# global batch 4096 = 16 GPUs x 256.
_base_ = [
    '../_base_/models/mcl_r50-fpn.py',
    '../_base_/datasets/imagenet_mcl.py',
    '../_base_/schedules/lars_coslr_100e.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=256)
optimizer = dict(lr=16.0)
optim_wrapper = dict(optimizer=optimizer)
