"""All-gathers over ranks: with gradient (in-batch negatives) and without (queued keys)."""
from typing import List, Tuple

import torch
import torch.distributed as dist
from torch import Tensor


def _world() -> Tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _sizes(x: Tensor) -> List[int]:
    """``x.shape[0]`` of every rank, in rank order."""
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(_world()[1])]
    dist.all_gather(sizes, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
    return [int(s.item()) for s in sizes]


def _gather(x: Tensor, sizes: List[int]) -> Tensor:
    """Concatenate ``x`` of every rank (``sizes[r]`` rows on rank ``r``) in rank order; ranks
    with fewer rows are padded for the collective and trimmed afterwards."""
    n_max = max(sizes)
    if x.shape[0] < n_max:
        x = torch.cat([x, x.new_zeros((n_max - x.shape[0], ) + tuple(x.shape[1:]))])
    out = [torch.empty_like(x) for _ in sizes]
    dist.all_gather(out, x.contiguous())
    return torch.cat([o[:n] for o, n in zip(out, sizes)])


class _GatherWithGrad(torch.autograd.Function):
    """Concatenate ``x`` from all ranks; the backward sums every rank's gradient w.r.t. the
    gathered tensor and returns this rank's slice, so the result equals single-process
    training on the global batch."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        sizes = _sizes(x)
        if len(set(sizes)) != 1:
            raise RuntimeError(f'all_gather_with_grad needs equal batch sizes on every rank, got '
                               f'{sizes}; use drop_last=True in the train dataloader')
        ctx.rank, ctx.n = _world()[0], x.shape[0]
        return _gather(x, sizes)

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


@torch.no_grad()
def all_gather_no_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` (``(N_r, ...)``) over ranks along dim 0, without gradient; ranks may
    hold different ``N_r`` (e.g. a last batch without ``drop_last``). Identity in a single
    process."""
    if _world()[1] == 1:
        return x
    return _gather(x, _sizes(x))


def rank_offset(n: int) -> int:
    """Index of this rank's first sample in a gathered batch of ``n`` samples per rank."""
    return _world()[0] * n
