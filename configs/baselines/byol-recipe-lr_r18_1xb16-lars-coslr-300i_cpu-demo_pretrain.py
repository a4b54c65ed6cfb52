# The BYOL CPU-demo baseline at BYOL's own learning rate. The demo baseline
# (./byol_r18_1xb16-lars-coslr-300i_cpu-demo_pretrain.py) copies the MCL demo's LARS lr,
# 4.0 x batch / 256, 13x the 0.3 x batch / 256 of mmpretrain's BYOL recipe (LARS lr 4.8 at 4096,
# ./byol_r50_16xb256-lars-coslr-200e_in1k.py); at that rate its C5 features collapse onto 2-3
# directions (docs/results/probe_protocol.md, "BYOL's features"). This config keeps everything
# else (views, batch, wd, schedule, momentum) and takes the recipe's rate.
_base_ = ['./byol_r18_1xb16-lars-coslr-300i_cpu-demo_pretrain.py']
optimizer = dict(lr=4.8 * 16 / 4096)
optim_wrapper = dict(optimizer=optimizer)
