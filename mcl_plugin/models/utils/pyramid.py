"""Compute only the pyramid levels a loss reads (the lean target / online passes)."""
from typing import Iterable, List, Optional, Sequence

import torch.nn.functional as F
from mmdet.models.necks import FPN
from torch import Tensor, nn

from ..necks.interpolated_pyramid import InterpolatedPyramid


def pyramid_outputs(neck: nn.Module, inputs: Sequence[Tensor],
                    needed: Optional[Iterable[int]] = None) -> List[Optional[Tensor]]:
    """Outputs ``needed`` of ``neck(inputs)``; the other entries are ``None``.

    For an mmdet :class:`~mmdet.models.necks.FPN` without extra levels, output ``i`` depends
    only on the laterals ``i .. n-1`` (the top-down path starts at the coarsest level), so only
    those laterals, the top-down sums down to the finest needed level and the needed output
    convs run -- with the same operations in the same order as ``FPN.forward``, hence the same
    numbers (e.g. MCL's loss mode ``a`` reads P5 alone: one 1x1 and one 3x3 conv instead of the
    3x3 convs on P2-P4, which at 128 px cost more than a ResNet-18). An
    :class:`InterpolatedPyramid` resizes only the needed outputs. Any other neck (or an FPN with
    extra levels) runs whole: its outputs are exact, only nothing is saved.

    Args:
        neck (nn.Module): The pyramid.
        inputs (Sequence[Tensor]): Backbone outputs.
        needed (Iterable[int], optional): Output indices to compute. Defaults to all.

    Returns:
        list[Tensor | None]: One entry per output of ``neck``.
    """
    if needed is None:
        return list(neck(inputs))
    needed = sorted(set(needed))
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
    return [neck.fpn_convs[i](laterals[i]) if i in needed else None for i in range(n)]


def _check(needed: List[int], n: int, neck: nn.Module) -> None:
    if needed and not 0 <= needed[0] <= needed[-1] < n:
        raise ValueError(f'{type(neck).__name__} has outputs 0..{n - 1}; asked for {needed}')
