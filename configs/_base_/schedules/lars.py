# LARS as in the MCL / SoCo paper recipes: momentum 0.9, wd 1e-5, gradient clipping at 500, no
# weight decay and no LARS adaptation for norm layers (BN, GN), biases and the downsample BN.
# lr = 1.0 * batch / 256 is set by the leaf config.
optimizer = dict(type='LARS', lr=16.0, momentum=0.9, weight_decay=1e-5)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=dict(max_norm=500),
    paramwise_cfg=dict(
        custom_keys={
            'bn': dict(decay_mult=0, lars_exclude=True),
            'gn': dict(decay_mult=0, lars_exclude=True),
            'bias': dict(decay_mult=0, lars_exclude=True),
            'downsample.1': dict(decay_mult=0, lars_exclude=True),
        }))
