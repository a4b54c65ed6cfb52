"""Save and restore the random number generators with every checkpoint (exact resume)."""
import random

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import IterBasedTrainLoop

from mcl_plugin.registry import HOOKS


class _RestoreBeforeFetch:
    """Proxy of a training-loop data iterator: once the resumed loop has replayed ``skip``
    batches, put the saved generator states back just before the next batch is fetched."""

    def __init__(self, iterator, skip: int, restore) -> None:
        self._iterator, self._skip, self._restore = iterator, skip, restore

    def __next__(self):
        if self._restore is not None and self._skip == 0:
            self._restore()
            self._restore = None
        self._skip -= 1
        return next(self._iterator)

    def __iter__(self):
        return self

    def __getattr__(self, name: str):
        return getattr(self._iterator, name)


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Put the Python, NumPy and torch (CPU and CUDA) RNG states into each checkpoint and
    restore them on ``--resume``, so that a resumed run repeats the uninterrupted one exactly.

    mmengine restores weights, optimizer, schedulers, EMA buffers and the iteration counter, and
    replays the data loader up to the resumed iteration, but not the generators. The states are
    saved after iteration ``k``, just before batch ``k + 1`` is fetched. On resume of an
    iteration-based loop they are put back at that same point: after mmengine's replay of the
    first ``k`` batches (which, with ``num_workers=0``, runs the random augmentations in this
    process and moves the generators) and before batch ``k + 1``. Epoch-based loops (which do not
    replay) get them back when the checkpoint is loaded. With ``num_workers >= 1`` the
    augmentation randomness lives in the workers, which mmengine re-seeds deterministically.
    """

    priority = 'VERY_LOW'
    KEY = 'mcl_plugin_rng_states'

    def __init__(self) -> None:
        self._pending = None

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
        self._pending = states
        self._restore()  # right for every loop that does not replay batches

    def before_train(self, runner) -> None:
        loop = runner.train_loop
        if self._pending is None or not isinstance(loop, IterBasedTrainLoop) or loop.iter == 0:
            return
        loop.dataloader_iterator = _RestoreBeforeFetch(loop.dataloader_iterator, loop.iter,
                                                       self._restore)

    def _restore(self) -> None:
        states = self._pending
        random.setstate(states['python'])
        np.random.set_state(states['numpy'])
        torch.set_rng_state(states['torch'])
        if 'cuda' in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states['cuda'])
