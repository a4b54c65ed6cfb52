from .cpu_dist import cpu_distributed_cfg, setup_cpu_distributed
from .hooks import *  # noqa: F401,F403
from .malloc import keep_freed_memory, kept_settings
