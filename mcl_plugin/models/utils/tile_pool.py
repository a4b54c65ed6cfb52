"""Level assignment and tile pooling: read each montage tile from its feature level."""
from typing import List, Optional, Sequence

import torch
from mmcv.ops import roi_align
from mmengine.model import BaseModule
from torch import Tensor

from mcl_plugin.registry import MODELS

from .montage import MontageBatch


def montage_level_to_feature(level: int, num_feats: int) -> int:
    """Index of the feature map that serves tiles of montage ``level``.

    A tile downsampled by ``2**s`` is read from ``P(5-s)`` (paper §3.2): with the usual
    FPN outputs ``[P2, P3, P4, P5]`` that is index ``num_feats - 1 - s``.
    """
    idx = num_feats - 1 - level
    if idx < 0:
        raise ValueError(f'montage level {level} needs at least {level + 1} feature maps, '
                         f'got {num_feats}')
    return idx


@MODELS.register_module()
class TilePooler(BaseModule):
    """Pools every montage tile to ``out_size x out_size`` from its assigned feature map.

    When a tile covers exactly ``out_size`` cells of its map (224 px inputs, level ``s`` on
    ``P(5-s)``: always 7x7) the pooling is an exact crop done with one reshape per level;
    otherwise it falls back to mmcv's ``RoIAlign`` on the tile's pixel box.

    Args:
        featmap_strides (Sequence[int]): Strides of the input feature maps.
        out_size (int): Output side. Defaults to 7.
        level_to_feat (Sequence[int], optional): Feature index per montage level.
            Defaults to :func:`montage_level_to_feature` (P5 for level 0, P4 for level 1 ...).
        sampling_ratio (int): ``RoIAlign`` sampling ratio for the fall-back. Defaults to 0.
        force_roi_align (bool): Always use ``RoIAlign`` (for tests and ablations).
    """

    def __init__(self,
                 featmap_strides: Sequence[int] = (4, 8, 16, 32),
                 out_size: int = 7,
                 level_to_feat: Optional[Sequence[int]] = None,
                 sampling_ratio: int = 0,
                 force_roi_align: bool = False) -> None:
        super().__init__()
        self.featmap_strides = list(featmap_strides)
        self.out_size = out_size
        self.level_to_feat = None if level_to_feat is None else list(level_to_feat)
        self.sampling_ratio = sampling_ratio
        self.force_roi_align = force_roi_align

    def feature_index(self, level: int) -> int:
        if self.level_to_feat is None:
            return montage_level_to_feature(level, len(self.featmap_strides))
        if level >= len(self.level_to_feat):
            raise ValueError(f'level_to_feat={self.level_to_feat} has no entry for level {level}')
        return self.level_to_feat[level]

    def forward(self, feats: Sequence[Tensor], batch: MontageBatch,
                montage_offsets: Optional[List[int]] = None) -> Tensor:
        """Pool the tiles of ``batch`` from ``feats``.

        Args:
            feats (Sequence[Tensor]): Feature maps of the montages of all levels concatenated
                along the batch axis, in level order.
            batch (MontageBatch): The montages and their tile metadata.
            montage_offsets (list[int], optional): Row of the first montage of each level in
                ``feats``. Defaults to the cumulative montage counts.

        Returns:
            Tensor: ``(T, C, out_size, out_size)`` in the tile order of ``batch``.
        """
        if len(feats) != len(self.featmap_strides):
            raise ValueError(f'TilePooler got {len(feats)} feature maps but featmap_strides='
                             f'{self.featmap_strides}')
        if montage_offsets is None:
            counts = [m.shape[0] for m in batch.montages]
            montage_offsets = [sum(counts[:s]) for s in range(len(counts))]
        out = []
        for s, montages in enumerate(batch.montages):
            idx = self.feature_index(s)
            feat = feats[idx][montage_offsets[s]:montage_offsets[s] + montages.shape[0]]
            out.append(self._pool_level(feat, batch, s, self.featmap_strides[idx]))
        return torch.cat(out)

    def _pool_level(self, feat: Tensor, batch: MontageBatch, level: int, stride: int) -> Tensor:
        r = 2**level
        M, C, fh, fw = feat.shape
        H, W = batch.montages[level].shape[-2:]
        k = self.out_size
        aligned = (H == fh * stride and W == fw * stride and fh == r * k and fw == r * k)
        if aligned and not self.force_roi_align:
            # (M, C, r*k, r*k) -> (M, r, r, C, k, k): row-major tiles, like the montage.
            tiles = feat.view(M, C, r, k, r, k).permute(0, 2, 4, 1, 3, 5)
            return tiles.reshape(M * r * r, C, k, k)
        sl = batch.level_slice(level)
        rois = torch.cat([batch.montage[sl, None].to(feat.dtype), batch.boxes[sl].to(feat.dtype)],
                         dim=1)
        return roi_align(feat, rois, (k, k), 1.0 / stride, self.sampling_ratio, 'avg', True)
