# Runtime of every *_cpu-demo_* config: ./default_runtime.py with iteration-based logging (a line
# every 10 iterations) and checkpoints (every 100 iterations, the last 2 kept).
_base_ = './default_runtime.py'
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2))
log_processor = dict(window_size=10, by_epoch=False)
