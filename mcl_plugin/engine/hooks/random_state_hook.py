"""Save and restore the random number generators with every checkpoint (exact resume)."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook

from mcl_plugin.registry import HOOKS


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Put the Python, NumPy and torch (CPU and CUDA) RNG states into each checkpoint and
    restore them on ``--resume``.

    mmengine restores weights, optimizer, schedulers, EMA buffers and the iteration counter, and
    replays the data loader up to the resumed iteration, but not the generators: the montage
    shuffle and any random draw made in the main process would diverge from an uninterrupted run.
    With this hook (and ``num_workers >= 1``, so that augmentation randomness lives in the
    re-seeded workers) a resumed run continues exactly as the uninterrupted one.
    """

    priority = 'VERY_LOW'
    KEY = 'mcl_plugin_rng_states'

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = dict(python=random.getstate(), numpy=np.random.get_state(),
                      torch=torch.get_rng_state())
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            states['cuda'] = torch.cuda.get_rng_state_all()
        checkpoint[self.KEY] = states

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get(self.KEY)
        if states is None:
            runner.logger.warning('the checkpoint carries no RNG states (saved without '
                                  'RandomStateHook): the resumed run will not repeat the '
                                  'uninterrupted one exactly')
            return
        random.setstate(states['python'])
        np.random.set_state(states['numpy'])
        torch.set_rng_state(states['torch'])
        if 'cuda' in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states['cuda'])
