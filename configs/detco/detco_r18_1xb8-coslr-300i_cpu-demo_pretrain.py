# CPU demo: ResNet-18, small views (global 112 px; 24-px jigsaw patches, the crop augmented once,
# then cut, as the paper recipe), batch 8, queues of 256 keys, MLP hidden 512 for every head (the
# paper-size configs: the input width, up to 9 x 512 = 4608 here), BN (one process: no
# shuffle), SGD lr = 0.06 * 8 / 256 with cosine decay and no warm-up (as the paper recipe),
# 300 iterations.
# Data: data/pretrain from tools/prepare_data.py (unlabelled photos).
_base_ = [
    '../_base_/models/detco_r50.py',
    '../_base_/datasets/pretrain_detco_cpu-demo.py',
    '../_base_/schedules/coslr-300i_cpu-demo.py',
    '../_base_/default_runtime_cpu-demo.py',
]
model = dict(
    queue_len=256,
    backbone=dict(depth=18),
    neck=dict(in_channels=(64, 128, 256, 512), hid_channels=512))
train_dataloader = dict(batch_size=8)
optimizer = dict(type='SGD', lr=0.06 * 8 / 256, momentum=0.9, weight_decay=1e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=_base_.max_iters, by_epoch=False, begin=0,
         end=_base_.max_iters, eta_min=0.),
]
