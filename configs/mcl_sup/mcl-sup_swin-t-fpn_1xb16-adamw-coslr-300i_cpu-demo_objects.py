# CPU demo of supervised MCL with Swin-T on the objects_coco crops (128-px views, S = 3).
_base_ = [
    './mcl-sup_r18-fpn_1xb16-sgd-coslr-300i_cpu-demo_objects.py',
    '../_base_/models/swin-t.py',
]
model = dict(
    backbone=dict(_base_.swin_t, _delete_=True, drop_path_rate=0.1),
    neck=dict(in_channels=_base_.swin_t_channels))
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-4, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0,
        bias_decay_mult=0.0,
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.0),
            'relative_position_bias_table': dict(decay_mult=0.0),
        }))
