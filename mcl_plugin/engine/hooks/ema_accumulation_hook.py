"""One EMA-target update per optimizer step when gradients are accumulated."""
import logging
from typing import List

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import BaseAveragedModel, is_model_wrapper
from mmengine.optim import OptimWrapperDict

from mcl_plugin.registry import HOOKS


def accumulative_counts(optim_wrapper) -> int:
    """``accumulative_counts`` of an ``OptimWrapper`` (all wrappers of an ``OptimWrapperDict``
    must agree).

    Raises:
        ValueError: The wrappers of an ``OptimWrapperDict`` accumulate different counts.
    """
    if isinstance(optim_wrapper, OptimWrapperDict):
        counts = {int(getattr(w, '_accumulative_counts', 1)) for w in optim_wrapper.values()}
        if len(counts) > 1:
            raise ValueError('EMAAccumulationHook needs one accumulative_counts for all optim '
                             f'wrappers, got {sorted(counts)}')
        return counts.pop() if counts else 1
    return int(getattr(optim_wrapper, '_accumulative_counts', 1))


@HOOKS.register_module()
class EMAAccumulationHook(Hook):
    """Update the EMA target once per optimizer step, not once per micro-batch.

    MCL, SoCo, DetCo and PLRC (like mmpretrain's BYOL / MoCo) call
    ``target_net.update_parameters(online)`` inside ``loss()``, i.e. once per **iteration**.
    With ``optim_wrapper.accumulative_counts = k`` the optimizer steps once per ``k``
    iterations, so without this hook the target is averaged ``k`` times towards the *same*
    online weights (an effective per-step momentum of ``1 - (1 - m)^k`` instead of ``m``) and
    the micro-batches of one step see different targets. The run then differs from the
    large-batch run it is meant to emulate.

    This hook sets ``interval = k`` (times any interval already configured) on every
    ``mmengine.model.BaseAveragedModel`` in the model (``CosineEMA``,
    ``ExponentialMovingAverage``). mmengine's EMA then averages only on calls whose step
    counter is a multiple of ``k``: the first micro-batch of each accumulation window, right
    after the optimizer step, with the freshly updated online weights; the other micro-batches
    reuse that target. The momentum schedule (``CosineEMA``) still reads the iteration
    counter, as without accumulation. With ``k = 1`` the hook changes nothing.

    The EMA step counter and the optimizer's micro-batch counter start together (both 0, or
    both the resumed iteration); the hook warns if a loaded checkpoint breaks that alignment.
    """

    priority = 'VERY_HIGH'

    def __init__(self) -> None:
        self._base_intervals: List[int] = []

    @staticmethod
    def averaged_models(model) -> List[BaseAveragedModel]:
        """Every ``BaseAveragedModel`` inside ``model`` (unwrapped from DDP)."""
        if is_model_wrapper(model):
            model = model.module
        return [m for m in model.modules() if isinstance(m, BaseAveragedModel)]

    def before_train(self, runner) -> None:
        counts = accumulative_counts(runner.optim_wrapper)
        emas = self.averaged_models(runner.model)
        if counts == 1 or not emas:
            return
        if not self._base_intervals:  # a second train() call must not multiply again
            self._base_intervals = [int(ema.interval) for ema in emas]
        for ema, base in zip(emas, self._base_intervals):
            ema.interval = base * counts
            if int(ema.steps) % counts != runner.iter % counts:
                print_log(f'EMAAccumulationHook: the EMA step counter ({int(ema.steps)}) and '
                          f'the iteration ({runner.iter}) are not in the same position of '
                          f'the {counts}-iteration accumulation window: the target is '
                          'updated in the middle of a window.',
                          logger='current', level=logging.WARNING)
        print_log(f'EMAAccumulationHook: accumulative_counts={counts}, {len(emas)} EMA '
                  f'target(s) updated once per optimizer step (interval '
                  f'{[e.interval for e in emas]})', logger='current')
