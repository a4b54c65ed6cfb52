"""RoIAlign over a feature pyramid with scale-aware level assignment (SoCo §3.2, Mask R-CNN).

Boxes are pooled with mmcv's ``roi_align`` (``aligned=True``: continuous pixel coordinates,
the convention of the box transforms in :mod:`mcl_plugin.datasets.transforms.soco`).
"""
from typing import List, Optional, Sequence, Union

import torch
from mmcv.ops import roi_align
from mmengine.model import BaseModule
from torch import Tensor

from mcl_plugin.registry import MODELS

#: SoCo's ranges: ``sqrt(area) <= 48 -> P2, <= 96 -> P3, <= 192 -> P4, else P5`` (224-px views).
SOCO_SCALE_THRESHOLDS = (48, 96, 192)


def assign_levels_by_scale(boxes: Tensor,
                           thresholds: Sequence[float] = SOCO_SCALE_THRESHOLDS,
                           num_levels: Optional[int] = None) -> Tensor:
    """Pyramid level of every box from its size.

    Level ``i`` holds boxes with ``thresholds[i-1]**2 < area <= thresholds[i]**2`` (areas in the
    pixels of the image the box lives in); boxes larger than the last threshold go to level
    ``len(thresholds)``. The comparison is on areas, so ``w = h = 48`` is level 0 exactly.

    Args:
        boxes (Tensor): ``(N, 4)`` ``x1, y1, x2, y2``, or ``(N, 5)`` rois (batch index first).
        thresholds (Sequence[float]): Increasing side thresholds (``sqrt(area)``).
        num_levels (int, optional): Clamp to ``num_levels - 1``. Defaults to
            ``len(thresholds) + 1``.

    Returns:
        Tensor: ``(N,)`` long level indices (0 = finest).
    """
    if boxes.shape[-1] == 5:
        boxes = boxes[:, 1:]
    if list(thresholds) != sorted(thresholds):
        raise ValueError(f'thresholds must increase, got {list(thresholds)}')
    w = (boxes[:, 2] - boxes[:, 0]).clamp(min=0)
    h = (boxes[:, 3] - boxes[:, 1]).clamp(min=0)
    area = w * h
    bounds = torch.tensor([float(t)**2 for t in thresholds], dtype=area.dtype,
                          device=area.device)
    levels = torch.bucketize(area, bounds, right=False) if len(thresholds) else \
        torch.zeros_like(area, dtype=torch.long)
    top = len(thresholds) if num_levels is None else num_levels - 1
    return levels.clamp(max=top).long()


def roi_align_levels(feats: Sequence[Tensor],
                     rois: Tensor,
                     levels: Tensor,
                     strides: Sequence[int],
                     out_size: Union[int, Sequence[int]] = 7,
                     sampling_ratio: int = 0,
                     aligned: bool = True) -> Tensor:
    """``roi_align`` of each roi on the map of its level, results in the order of ``rois``.

    Args:
        feats (Sequence[Tensor]): ``(B, C, H_l, W_l)`` maps.
        rois (Tensor): ``(R, 5)`` ``batch_index, x1, y1, x2, y2`` in input pixels.
        levels (Tensor): ``(R,)`` index into ``feats``.
        strides (Sequence[int]): Stride of every map.
        out_size (int | tuple): Output size.
        sampling_ratio (int): RoIAlign sampling ratio (0: adaptive).
        aligned (bool): Half-pixel offset (Detectron2/mmdet ``aligned=True``).

    Returns:
        Tensor: ``(R, C, out_h, out_w)``.
    """
    if len(feats) != len(strides):
        raise ValueError(f'{len(feats)} feature maps but {len(strides)} strides')
    size = (out_size, out_size) if isinstance(out_size, int) else tuple(out_size)
    out = feats[0].new_zeros(rois.shape[0], feats[0].shape[1], *size)
    rois = rois.to(feats[0].dtype)
    for lvl, (feat, stride) in enumerate(zip(feats, strides)):
        idx = (levels == lvl).nonzero(as_tuple=True)[0]
        if idx.numel():
            out[idx] = roi_align(feat, rois[idx], size, 1.0 / stride, sampling_ratio, 'avg',
                                 aligned).to(out.dtype)
        elif feat.requires_grad:
            out = out + 0 * feat.sum()  # keep every level in the graph (DDP unused params)
    return out


@MODELS.register_module()
class MultiLevelRoIPooler(BaseModule):
    """Pool boxes from a feature pyramid, each on the level its size selects.

    With ``scale_thresholds=(48, 96, 192)`` and P2-P5 this is SoCo's scale-aware assignment;
    with one map and no thresholds it is plain RoIAlign (the C4 variant). Scale the thresholds
    with the view size for views smaller than 224 px.

    Args:
        featmap_strides (Sequence[int]): Strides of the maps, finest first.
            Defaults to (4, 8, 16, 32).
        out_size (int): Output side. Defaults to 7.
        scale_thresholds (Sequence[float]): See :func:`assign_levels_by_scale`; needs
            ``len(featmap_strides) - 1`` values. Defaults to (48, 96, 192).
        sampling_ratio (int): RoIAlign sampling ratio. Defaults to 0.
        aligned (bool): Defaults to True.
    """

    def __init__(self,
                 featmap_strides: Sequence[int] = (4, 8, 16, 32),
                 out_size: int = 7,
                 scale_thresholds: Sequence[float] = SOCO_SCALE_THRESHOLDS,
                 sampling_ratio: int = 0,
                 aligned: bool = True) -> None:
        super().__init__()
        if len(scale_thresholds) != len(featmap_strides) - 1:
            raise ValueError(f'{len(featmap_strides)} feature maps need '
                             f'{len(featmap_strides) - 1} scale_thresholds, got '
                             f'{list(scale_thresholds)}')
        self.featmap_strides = list(featmap_strides)
        self.out_size = out_size
        self.scale_thresholds = list(scale_thresholds)
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def assign(self, rois: Tensor) -> Tensor:
        """Level of every roi (``(R, 5)`` or ``(R, 4)``)."""
        return assign_levels_by_scale(rois, self.scale_thresholds, len(self.featmap_strides))

    def forward(self, feats: Sequence[Tensor], rois: Tensor,
                levels: Optional[Tensor] = None) -> Tensor:
        """Pool ``rois`` (``(R, 5)``, input pixels) from ``feats``; ``levels`` defaults to
        :meth:`assign`. Returns ``(R, C, out_size, out_size)`` in roi order."""
        feats = list(feats)
        if len(feats) != len(self.featmap_strides):
            raise ValueError(f'MultiLevelRoIPooler got {len(feats)} feature maps but '
                             f'featmap_strides={self.featmap_strides}')
        if levels is None:
            levels = self.assign(rois)
        return roi_align_levels(feats, rois, levels, self.featmap_strides, self.out_size,
                                self.sampling_ratio, self.aligned)


def boxes_to_rois(boxes: Union[Tensor, List[Tensor]]) -> Tensor:
    """``(B, K, 4)`` or a list of ``(K_b, 4)`` boxes -> ``(sum K_b, 5)`` rois (image index
    first), like mmdet's ``bbox2roi``."""
    if isinstance(boxes, Tensor):
        if boxes.dim() != 3 or boxes.shape[-1] != 4:
            raise ValueError(f'expected (B, K, 4) boxes, got {tuple(boxes.shape)}')
        boxes = list(boxes)
    rois = [torch.cat([b.new_full((b.shape[0], 1), i), b], 1) for i, b in enumerate(boxes)]
    return torch.cat(rois) if rois else torch.zeros(0, 5)


__all__ = [
    'SOCO_SCALE_THRESHOLDS', 'assign_levels_by_scale', 'roi_align_levels', 'MultiLevelRoIPooler',
    'boxes_to_rois'
]
