# Runtime of every *_cpu-demo_* config: ./default_runtime.py with iteration-based logging (a line
# every 10 iterations) and checkpoints (every 100 iterations, the last 2 kept), and
# KeepFreedMemoryHook: glibc malloc keeps freed memory for the next step instead of mapping every
# large activation afresh (37-50 % less time per ResNet-50 forward on the 2-core CPU box, the same
# numbers; the process keeps its peak heap: docs/results/benchmark_malloc_keep.md). It warns and
# does nothing on a C library other than glibc (macOS). Off: --cfg-options
# custom_hooks.4.enabled=False (it is the 5th custom hook of every *_cpu-demo_* config).
_base_ = './default_runtime.py'
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=2))
log_processor = dict(window_size=10, by_epoch=False)
custom_hooks = [*_base_.custom_hooks, dict(type='KeepFreedMemoryHook')]
