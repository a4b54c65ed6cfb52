"""Warm-up of PLRC's point affinity distillation."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mcl_plugin.registry import HOOKS


@HOOKS.register_module()
class PLRCDistillWarmupHook(Hook):
    """Disable PLRC's affinity distillation ``L_a`` for the first ``warmup`` epochs/iterations.

    The paper (Sec. 4.1) uses "30 epochs as a warm-up stage where no distillation is applied".
    Before every training iteration the hook calls ``model.set_distillation(active)`` with
    ``active = runner.epoch >= warmup`` (``by_epoch=True``) or ``runner.iter >= warmup``
    (``by_epoch=False``, for iteration-based loops, whose ``runner.epoch`` stays 0).
    ``runner.epoch``/``runner.iter`` count the *completed* epochs/iterations, so with
    ``warmup=30`` epochs 0-29 run without ``L_a`` and epoch 30 is the first with it. The state
    is recomputed every iteration, so resumed runs are right without saving it.

    Args:
        warmup (int): Length of the warm-up (paper: 30 epochs). 0 disables the warm-up.
        by_epoch (bool): Count ``warmup`` in epochs (True) or iterations.
    """

    priority = 'NORMAL'

    def __init__(self, warmup: int = 30, by_epoch: bool = True) -> None:
        if warmup < 0:
            raise ValueError(f'warmup must be >= 0, got {warmup}')
        self.warmup = warmup
        self.by_epoch = by_epoch

    def active(self, runner) -> bool:
        """Whether the distillation is on for the coming iteration."""
        return (runner.epoch if self.by_epoch else runner.iter) >= self.warmup

    def before_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        if not hasattr(model, 'set_distillation'):
            raise TypeError(f'PLRCDistillWarmupHook needs a model with set_distillation() '
                            f'(PLRC), got {type(model).__name__}')
        model.set_distillation(self.active(runner))
