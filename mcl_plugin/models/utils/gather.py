"""All-gather that keeps the autograd graph (negatives from every rank)."""
from typing import Tuple

import torch
import torch.distributed as dist
from torch import Tensor


def _world() -> Tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _GatherWithGrad(torch.autograd.Function):
    """Concatenate ``x`` from all ranks; the backward sums every rank's gradient w.r.t. the
    gathered tensor and returns this rank's slice, so the result equals single-process
    training on the global batch."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        rank, world = _world()
        sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
        dist.all_gather(sizes, torch.tensor([x.shape[0]], device=x.device))
        sizes = [int(s.item()) for s in sizes]
        if len(set(sizes)) != 1:
            raise RuntimeError(f'all_gather_with_grad needs equal batch sizes on every rank, got '
                               f'{sizes}; use drop_last=True in the train dataloader')
        out = [torch.empty_like(x) for _ in range(world)]
        dist.all_gather(out, x.contiguous())
        ctx.rank, ctx.n = rank, x.shape[0]
        return torch.cat(out)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n:(ctx.rank + 1) * ctx.n]


def all_gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (``(N, ...)``, same ``N`` on every rank) over ranks along dim 0, with
    gradient. Identity in a single process."""
    if _world()[1] == 1:
        return x
    return _GatherWithGrad.apply(x)


def rank_offset(n: int) -> int:
    """Index of this rank's first sample in a gathered batch of ``n`` samples per rank."""
    return _world()[0] * n
