# CPU demo: ResNet-18, 96-px views (3x3 C5 map up-sampled to R = 24), batch 8, queue 512,
# 300 iterations of cosine decay without warm-up (as the paper recipe); distillation warm-up
# 100 iterations. Data: data/pretrain from tools/prepare_data.py. lr 4x the linear-scaling value
# (0.03 * 8 / 256) so a short run visibly learns. Views: the contrasted crops keep the project's
# >= 50% overlap rule (min_overlap=0.5; the paper-size configs follow the official code, 0);
# the co-located distillation teacher reads a third crop, as in the paper-size configs.
_base_ = [
    '../_base_/models/plrc_r50.py',
    '../_base_/datasets/pretrain_plrc_cpu-demo.py',
    '../_base_/schedules/coslr-300i_cpu-demo.py',
    '../_base_/default_runtime_cpu-demo.py',
]
resolution = 24  # = the views' mask_size
batch_size = 8
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    resolution=resolution,
    queue_len=512,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    neck=dict(in_channels=512, hid_channels=512),
    projector=dict(in_channels=512, hid_channels=512))
train_dataloader = dict(batch_size=batch_size)

warmup_iters = 100
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.03 * batch_size / 256 * 4, momentum=0.9, weight_decay=1e-4))
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=_base_.max_iters, by_epoch=False, begin=0,
         end=_base_.max_iters)
]
custom_hooks = [
    *_base_.custom_hooks,
    dict(type='PLRCDistillWarmupHook', warmup=warmup_iters, by_epoch=False),
]
