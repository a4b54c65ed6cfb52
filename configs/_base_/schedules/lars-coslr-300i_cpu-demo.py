# The CPU-demo schedule (./coslr-300i_cpu-demo.py) with LARS as in the paper recipes
# (./lars_coslr_100e.py: momentum 0.9, wd 1e-5, clip 500, no decay and no LARS adaptation for
# BN, biases and downsample BN); lr = 1.0 * batch / 256 x 4 is set by the leaf config.
_base_ = './coslr-300i_cpu-demo.py'
optimizer = dict(type='LARS', lr=0.25, momentum=0.9, weight_decay=1e-5)
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=optimizer,
    clip_grad=dict(max_norm=500),
    paramwise_cfg=dict(
        custom_keys={
            'bn': dict(decay_mult=0, lars_exclude=True),
            'bias': dict(decay_mult=0, lars_exclude=True),
            'downsample.1': dict(decay_mult=0, lars_exclude=True),
        }))
