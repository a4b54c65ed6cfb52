# DetCo paper recipe (ICCV 2021, §6.5): ResNet-50, ImageNet-1K, 200 epochs, batch 256 = 8 GPUs
# x 32, per-GPU BN + shuffle-BN (MoCo v2's codebase; SyncBN would make the shuffle a no-op),
# SGD (MoCo v2: momentum 0.9, wd 1e-4) with lr 0.06 and cosine decay, no warm-up. MLP hidden
# width = input width and the jigsaw crop augmented once, then cut (the public code); every
# choice against the paper and the public code: README.md "Fidelity".
# The paper states lr 0.06 for batch 256 ("The learning rate for pre-training is 0.06 with the
# cosine decay schedule"); MoCo v2 itself uses 0.03. auto_scale_lr rescales it linearly
# (lr = 0.06 * B / 256) when tools/train.py --auto-scale-lr is given.
#
# Hand-off to MMDetection (backbone only; the MLP heads, queues and key encoder are dropped):
#   python tools/convert_to_mmdet.py work_dirs/<run>/epoch_200.pth detco_fpn.pth \
#       --config configs/benchmarks/mmdet/mask-rcnn_r50-fpn_syncbn-4conv1fc_1x_coco.py
#   python tools/convert_to_mmdet.py work_dirs/<run>/epoch_200.pth detco_c4.pth \
#       --config configs/benchmarks/mmdet/mask-rcnn_r50-c4_syncbn_1x_coco.py
_base_ = [
    '../_base_/models/detco_r50.py',
    '../_base_/datasets/detco_imagenet.py',
    '../_base_/default_runtime.py',
]
train_dataloader = dict(batch_size=32)  # per GPU, 8 GPUs

optimizer = dict(type='SGD', lr=0.06, momentum=0.9, weight_decay=1e-4)
optim_wrapper = dict(type='OptimWrapper', optimizer=optimizer)
max_epochs = 200
param_scheduler = [
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=0., convert_to_iter_based=True),
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs)
auto_scale_lr = dict(base_batch_size=256)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3))
