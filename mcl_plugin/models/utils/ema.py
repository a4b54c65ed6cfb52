"""Helpers around mmpretrain's ``CosineEMA`` target networks."""
from math import cos, pi

from mmengine.logging import MessageHub
from mmpretrain.models.utils import CosineEMA


def ema_momentum(ema: CosineEMA) -> float:
    """The momentum ``CosineEMA`` applies at its current step (mmengine convention, small =
    slow), for logging: ``end - (end - start) * (cos(pi * k / K) + 1) / 2``."""
    max_iters = MessageHub.get_current_instance().get_info('max_iters')
    if not max_iters:
        return float(ema.momentum)
    k = int(ema.steps)
    annealing = (cos(pi * k / float(max_iters)) + 1) / 2
    return float(ema.end_momentum - (ema.end_momentum - ema.momentum) * annealing)
