"""Compute only the pyramid levels a loss reads (the lean target / online passes)."""
from typing import Iterable, List, Mapping, Optional, Sequence

import torch.nn.functional as F
from mmdet.models.necks import FPN
from torch import Tensor, nn

from ..necks.interpolated_pyramid import InterpolatedPyramid


def pyramid_outputs(neck: nn.Module,
                    inputs: Sequence[Tensor],
                    needed: Optional[Iterable[int]] = None,
                    rows: Optional[Mapping[int, Tensor]] = None) -> List[Optional[Tensor]]:
    """Outputs ``needed`` of ``neck(inputs)``; the other entries are ``None``.

    For an mmdet :class:`~mmdet.models.necks.FPN` without extra levels, output ``i`` depends
    only on the laterals ``i .. n-1`` (the top-down path starts at the coarsest level), so only
    those laterals, the top-down sums down to the finest needed level and the needed output
    convs run -- with the same operations in the same order as ``FPN.forward``, hence the same
    numbers (e.g. MCL's loss mode ``a`` reads P5 alone: one 1x1 and one 3x3 conv instead of the
    3x3 convs on P2-P4, which at 128 px cost more than a ResNet-18). An
    :class:`InterpolatedPyramid` resizes only the needed outputs. Any other neck (or an FPN with
    extra levels) runs whole: its outputs are exact, only nothing is saved.

    With ``rows``, an FPN's output conv ``i`` runs only on the batch rows ``rows[i]`` (e.g. the
    montages whose tiles read that level); the other rows of output ``i`` are zeros. Convolutions
    treat rows independently, so the read rows are exact unless the output convs have
    BatchNorm, whose batch statistics then come from those rows alone.

    Args:
        neck (nn.Module): The pyramid.
        inputs (Sequence[Tensor]): Backbone outputs.
        needed (Iterable[int], optional): Output indices to compute. Defaults to all.
        rows (Mapping[int, Tensor], optional): Output index -> batch rows its output conv
            runs on (FPN only). Defaults to every row.

    Returns:
        list[Tensor | None]: One entry per output of ``neck``.
    """
    if needed is None:
        if rows:
            raise ValueError('pyramid_outputs: rows needs the output indices (needed)')
        return list(neck(inputs))
    needed = sorted(set(needed))
    if rows and not (isinstance(neck, FPN) and neck.num_outs == len(neck.lateral_convs)):
        raise ValueError(f'pyramid_outputs: rows need an mmdet FPN without extra levels, got '
                         f'{type(neck).__name__}')
    if isinstance(neck, InterpolatedPyramid):
        n = len(neck.scale_factors)
        _check(needed, n, neck)
        return [neck.level(inputs, i) if i in needed else None for i in range(n)]
    if not isinstance(neck, FPN) or neck.num_outs > len(neck.lateral_convs):
        return list(neck(inputs))
    n = len(neck.lateral_convs)
    _check(needed, n, neck)
    if len(inputs) != len(neck.in_channels):
        raise ValueError(f'FPN with in_channels={neck.in_channels} got {len(inputs)} inputs')
    lo = needed[0]
    laterals: List[Optional[Tensor]] = [None] * lo + [
        neck.lateral_convs[i](inputs[i + neck.start_level]) for i in range(lo, n)
    ]
    for i in range(n - 1, lo, -1):  # FPN.forward's top-down path, stopped at level lo
        if 'scale_factor' in neck.upsample_cfg:
            up = F.interpolate(laterals[i], **neck.upsample_cfg)
        else:
            up = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], **neck.upsample_cfg)
        laterals[i - 1] = laterals[i - 1] + up
    rows = rows or {}

    def output(i: int) -> Tensor:
        if i not in rows:
            return neck.fpn_convs[i](laterals[i])
        y = neck.fpn_convs[i](laterals[i][rows[i]])
        return y.new_zeros((laterals[i].shape[0], ) + y.shape[1:]).index_copy(0, rows[i], y)

    return [output(i) if i in needed else None for i in range(n)]


def _check(needed: List[int], n: int, neck: nn.Module) -> None:
    if needed and not 0 <= needed[0] <= needed[-1] < n:
        raise ValueError(f'{type(neck).__name__} has outputs 0..{n - 1}; asked for {needed}')
