# Runtime shared by every mcl_plugin pre-training config.
default_scope = 'mcl_plugin'
custom_imports = dict(imports=['mcl_plugin'], allow_failed_imports=False)

default_hooks = dict(
    runtime_info=dict(type='RuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=10, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)
# NaNGuardHook: fail fast on a NaN/Inf loss, never write a checkpoint with non-finite weights.
# RandomStateHook: RNG states travel with checkpoints, so --resume repeats an uninterrupted run.
# EMAAccumulationHook: with optim_wrapper.accumulative_counts=k the EMA target moves once per
# optimizer step, not k times (a no-op without accumulation).
# TrainDataCheckHook: refuse a loader that yields no batch, or a batch below the algorithm's
# minimum (MCL needs 2 images per process for its in-batch negatives), before the first step.
custom_hooks = [
    dict(type='TrainDataCheckHook'),
    dict(type='NaNGuardHook'),
    dict(type='RandomStateHook'),
    dict(type='EMAAccumulationHook'),
]

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches to 'gloo' when CUDA is not available.
    dist_cfg=dict(backend='nccl'),
)

# Visualisation backends. LocalVisBackend (vis_data/scalars.json and the per-run json log that
# tools/analysis/plot_curves.py reads) is always on. TensorBoard is the second entry and OFF by
# default; switch it on with (events go to the run's vis_data/ folder):
#   --cfg-options visualizer.vis_backends.1.enabled=True
# then `tensorboard --logdir WORK_DIR`.
vis_backends = [
    dict(type='LocalVisBackend'),
    dict(type='SwitchableTensorboardVisBackend', enabled=False),
]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)
log_processor = dict(window_size=10, by_epoch=True)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
