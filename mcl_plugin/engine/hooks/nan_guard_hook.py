"""Stop a run on a non-finite loss and never write a checkpoint with NaN/Inf weights."""
import math
from typing import Optional

import torch
from mmengine.hooks import Hook

from mcl_plugin.registry import HOOKS


@HOOKS.register_module()
class NaNGuardHook(Hook):
    """Raise ``FloatingPointError`` when the loss (or any logged loss term) is NaN/Inf, and
    before a checkpoint is saved if any parameter or buffer of the model is not finite.

    The message names the iteration, the offending keys and the usual fixes (lower lr, AMP loss
    scaling, gradient clipping, bad input), so a long run fails at the first bad step instead
    of silently training on (and saving) NaNs.

    Args:
        interval (int): Check the losses every ``interval`` iterations. Defaults to 1.
    """

    priority = 'VERY_LOW'

    def __init__(self, interval: int = 1) -> None:
        self.interval = interval

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        if not outputs or not self.every_n_train_iters(runner, self.interval):
            return
        bad = []
        for k, v in outputs.items():
            if 'loss' not in k:
                continue
            value = float(v.detach().float().mean()) if torch.is_tensor(v) else float(v)
            if not math.isfinite(value):
                bad.append(f'{k}={value}')
        if bad:
            raise FloatingPointError(
                f'non-finite loss at iteration {runner.iter + 1}: {", ".join(bad)}. Nothing was '
                'saved for this iteration. Lower the learning rate or warm up longer, enable '
                'gradient clipping (optim_wrapper.clip_grad), check AMP loss scaling, and check '
                'the input images (tools/browse_dataset.py).')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = [k for k, v in checkpoint.get('state_dict', {}).items()
               if torch.is_tensor(v) and v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            shown = ', '.join(bad[:5]) + (f' (+{len(bad) - 5} more)' if len(bad) > 5 else '')
            raise FloatingPointError(
                f'refusing to save a checkpoint at iteration {runner.iter}: non-finite values in '
                f'{shown}. Resume from the last good checkpoint with a lower learning rate.')
