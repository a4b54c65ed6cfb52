from .cpu_dist import enable_cpu_distributed
from .hooks import *  # noqa: F401,F403

# torchrun / --launcher pytorch on CPU-only machines (a no-op where CUDA is available).
enable_cpu_distributed()
