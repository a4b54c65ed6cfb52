# CPU demo of supervised MCL on real photographed objects: crops of the instances of
# data/objects_coco (9 classes) with their class, ResNet-18-FPN, 128-px views, S = 3, batch 16,
# SGD lr 0.02 (no decay on norms and biases), 300 iterations.
_base_ = [
    '../_base_/models/mcl-sup_r50-fpn.py',
    '../_base_/datasets/objects_mcl-sup_cpu-demo.py',
    '../_base_/schedules/coslr-300i_cpu-demo.py',
    '../_base_/default_runtime_cpu-demo.py',
]
num_classes = 9
norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    num_levels=_base_.num_levels,
    backbone=dict(depth=18, norm_cfg=norm_cfg),
    # S = 3 reads P3-P5 only: an FPN without P2 (start_level=1), so every parameter is used
    neck=dict(in_channels=[64, 128, 256, 512], start_level=4 - _base_.num_levels,
              num_outs=_base_.num_levels, norm_cfg=norm_cfg),
    tile_pooler=dict(featmap_strides=[4, 8, 16, 32][4 - _base_.num_levels:],
                     out_size=_base_.img_size // 32),
    tile_head=dict(norm_cfg=norm_cfg),
    head=dict(num_classes=num_classes))
train_dataloader = dict(batch_size=16)
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(_base_.param_scheduler[0], start_factor=1e-2),  # warm-up from lr x 0.01
    *_base_.param_scheduler[1:],
]
find_unused_parameters = False
