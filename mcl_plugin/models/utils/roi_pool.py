"""RoIAlign over a feature pyramid with scale-aware level assignment (SoCo §3.2, Mask R-CNN).

Boxes are pooled by mmdet's RoI extractor with mmcv's ``RoIAlign`` (``aligned=True``:
continuous pixel coordinates, the convention of the box transforms in
:mod:`mcl_plugin.datasets.transforms.soco`).
"""
from typing import List, Optional, Sequence, Union

import torch
from mmcv.ops import roi_align
from mmdet.models.roi_heads.roi_extractors import SingleRoIExtractor
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


def roi_align_cfg(out_size: int = 7, sampling_ratio: int = 0, aligned: bool = True) -> dict:
    """The mmcv ``RoIAlign`` layer config of every pooler of the plugin (SoCo's boxes and MCL's
    montage tiles), for mmdet's ``BaseRoIExtractor.build_roi_layers``."""
    return dict(type='RoIAlign', output_size=out_size, sampling_ratio=sampling_ratio,
                pool_mode='avg', aligned=aligned)


@MODELS.register_module()
class MultiLevelRoIPooler(SingleRoIExtractor):
    """mmdet's ``SingleRoIExtractor`` with SoCo's scale-aware level assignment.

    Boxes are pooled on the level their size selects (:func:`assign_levels_by_scale`) instead of
    mmdet's ``floor(log2(sqrt(area) / finest_scale))``; pooling, the level loop and the
    zero-valued term that keeps unused levels in the graph (DDP) are mmdet's. With
    ``scale_thresholds=(48, 96, 192)`` and P2-P5 this is SoCo's assignment; with one map and no
    thresholds it is plain RoIAlign (the C4 variant). Scale the thresholds with the view size
    for views smaller than 224 px.

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
                 aligned: bool = True,
                 init_cfg: Optional[dict] = None) -> None:
        if len(scale_thresholds) != len(featmap_strides) - 1:
            raise ValueError(f'{len(featmap_strides)} feature maps need '
                             f'{len(featmap_strides) - 1} scale_thresholds, got '
                             f'{list(scale_thresholds)}')
        super().__init__(
            roi_layer=roi_align_cfg(out_size, sampling_ratio, aligned),
            out_channels=0,  # set from the input maps in forward
            featmap_strides=list(featmap_strides),
            init_cfg=init_cfg)
        self.out_size = out_size
        self.scale_thresholds = list(scale_thresholds)

    def map_roi_levels(self, rois: Tensor, num_levels: int) -> Tensor:
        """SoCo's level of every roi (``(R, 5)``)."""
        return assign_levels_by_scale(rois, self.scale_thresholds, num_levels)

    def forward(self, feats: Sequence[Tensor], rois: Tensor) -> Tensor:
        """Pool ``rois`` (``(R, 5)``, input pixels) from ``feats``.

        Returns:
            Tensor: ``(R, C, out_size, out_size)`` in roi order.
        """
        feats = tuple(feats)
        if len(feats) != len(self.featmap_strides):
            raise ValueError(f'MultiLevelRoIPooler got {len(feats)} feature maps but '
                             f'featmap_strides={self.featmap_strides}')
        if all(f is not None for f in feats):
            self.out_channels = feats[0].shape[1]
            return super().forward(feats, rois)
        # only the assigned levels' maps were computed (pyramid_outputs; a no-gradient pass,
        # so mmdet's zero term for the unused levels is not needed)
        levels = self.map_roi_levels(rois, len(feats))
        ref = next(f for f in feats if f is not None)
        out = ref.new_zeros(rois.shape[0], ref.shape[1], self.out_size, self.out_size)
        for i in levels.unique().tolist():
            if feats[i] is None:
                raise ValueError(f'rois are assigned to level {i}, whose map was not computed')
            mask = levels == i
            out[mask] = self.roi_layers[i](feats[i], rois[mask].to(feats[i].dtype))
        return out

    def pool_every_level(self, feats: Sequence[Tensor], rois: Tensor,
                         img_shape: Sequence[int]) -> List[Tensor]:
        """Every roi RoI-aligned on every level: the official SoCo (``SoCo_FPN.py:131-141``,
        ``box_util.py:11-25``) pools each box on P2-P5 and picks the assigned level in the loss.

        As there, box coordinates are scaled by ``feature size / image size`` per level (not by
        ``1 / stride``: a 112-px view has a 4x4 P5, so its boxes are scaled by 4/112, not 1/32).

        Args:
            feats (Sequence[Tensor]): ``(B, C, h_l, w_l)`` maps, finest first.
            rois (Tensor): ``(R, 5)`` rois in the pixels of the ``img_shape`` input.
            img_shape (Sequence[int]): ``(H, W)`` of the input.

        Returns:
            list[Tensor]: ``(R, C, out_size, out_size)`` per level.
        """
        out = []
        for feat in feats:
            sx, sy = feat.shape[-1] / img_shape[1], feat.shape[-2] / img_shape[0]
            scale = rois.new_tensor([1., sx, sy, sx, sy])
            out.append(roi_align(feat, rois * scale, self.out_size, 1.0,
                                 self.roi_layers[0].sampling_ratio, 'avg',
                                 self.roi_layers[0].aligned))
        return out


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
    'SOCO_SCALE_THRESHOLDS', 'assign_levels_by_scale', 'roi_align_cfg', 'MultiLevelRoIPooler',
    'boxes_to_rois'
]
