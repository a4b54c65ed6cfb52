from .ema_accumulation_hook import EMAAccumulationHook
from .keep_freed_memory_hook import KeepFreedMemoryHook
from .nan_guard_hook import NaNGuardHook
from .plrc_hook import PLRCDistillWarmupHook  # noqa: E402
from .random_state_hook import RandomStateHook
from .train_data_check_hook import TrainDataCheckHook

__all__ = ['EMAAccumulationHook', 'KeepFreedMemoryHook', 'NaNGuardHook', 'PLRCDistillWarmupHook',
           'RandomStateHook', 'TrainDataCheckHook']
