"""FIFO queue of negative keys (MoCo), shared by DetCo and PLRC.

Ownership: the algorithm holds its queues (``self.queues``, an ``nn.ModuleDict`` of
:class:`NegativeQueue` named by what they hold, as mmpretrain's MoCo holds its queue); it passes
:meth:`NegativeQueue.negatives` to the head's ``loss()`` and enqueues the step's keys after it.
Heads never write queues.
"""
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .gather import all_gather_no_grad


class NegativeQueue(nn.Module):
    """Fixed-length FIFO memory of L2-normalised keys (MoCo's dictionary).

    ``queue`` is a ``(length, dim)`` buffer initialised with L2-normalised Gaussian noise (as in
    MoCo) and ``ptr`` the row the next key is written to. :meth:`enqueue` all-gathers the keys of
    every rank (no gradient), so all ranks hold the same queue, and overwrites the oldest rows
    with wrap-around; batches need not divide ``length``. Both are buffers, so they are saved in
    checkpoints and a resumed run continues with the same negatives.

    :meth:`enqueue` writes **in place**: read negatives through :meth:`negatives` (a detached
    copy) when the logits are back-propagated after the enqueue, otherwise autograd raises
    "modified by an inplace operation" (it never silently uses the new rows).

    Args:
        length (int): Number of keys ``K`` (MoCo: 65536).
        dim (int): Key dimension ``D`` (MoCo v2: 128).
    """

    def __init__(self, length: int, dim: int) -> None:
        super().__init__()
        if length < 1 or dim < 1:
            raise ValueError(f'NegativeQueue needs length >= 1 and dim >= 1, got {length}, {dim}')
        self.length, self.dim = length, dim
        self.register_buffer('queue', F.normalize(torch.randn(length, dim), dim=1))
        self.register_buffer('ptr', torch.zeros(1, dtype=torch.long))

    def negatives(self) -> Tensor:
        """A detached copy of the queue, ``(length, dim)``."""
        return self.queue.clone().detach()

    @torch.no_grad()
    def enqueue(self, keys: Tensor) -> None:
        """Write ``keys`` (``(N, dim)``, this rank's) of all ranks after the newest entries.

        The keys are stored as given (normalise them first, as MoCo's keys are). When the
        gathered batch is longer than the queue only its last ``length`` keys are kept.
        """
        if keys.dim() != 2 or keys.shape[1] != self.dim:
            raise ValueError(f'NegativeQueue(dim={self.dim}).enqueue expects (N, {self.dim}) '
                             f'keys, got {tuple(keys.shape)}')
        keys = all_gather_no_grad(keys.detach()).to(self.queue.dtype)
        if keys.shape[0] > self.length:
            keys = keys[-self.length:]
        n, p = keys.shape[0], int(self.ptr.item())
        idx = (p + torch.arange(n, device=self.queue.device)) % self.length
        self.queue[idx] = keys.to(self.queue.device)
        self.ptr[0] = (p + n) % self.length

    def extra_repr(self) -> str:
        return f'length={self.length}, dim={self.dim}'
