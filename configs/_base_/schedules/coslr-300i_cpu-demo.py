# CPU-demo schedule of every *_cpu-demo_* config: 300 iterations (iteration-based, so a run takes
# minutes on a laptop), a 10% linear warm-up then cosine to 0. The optimizer is the leaf config's
# (LARS: add ./lars.py). tools/pretrain_and_finetune.py --pretrain-iters rescales warm-up and
# cosine together.
max_iters = 300
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=False, begin=0, end=max_iters // 10),
    dict(type='CosineAnnealingLR', T_max=max_iters - max_iters // 10, by_epoch=False,
         begin=max_iters // 10, end=max_iters, eta_min=0.),
]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
