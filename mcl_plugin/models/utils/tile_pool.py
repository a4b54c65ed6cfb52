"""Level assignment and tile pooling: read each montage tile from its feature level."""
from typing import List, Optional, Sequence

import torch
from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor
from torch import Tensor

from mcl_plugin.registry import MODELS

from .montage import MontageBatch
from .roi_pool import roi_align_cfg


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
class TilePooler(BaseRoIExtractor):
    """Pools every montage tile to ``out_size x out_size`` from its assigned feature map.

    An mmdet RoI extractor whose RoIs are the tiles of a :class:`MontageBatch` and whose level
    mapping is the montage level (level ``s`` on ``P(5-s)``), not the box scale. When a tile
    covers exactly ``out_size`` cells of its map (224 px inputs: always 7x7) the pooling is an
    exact crop done with one reshape per level; otherwise the tiles' RoIs go through the
    extractor's ``RoIAlign`` layers, the same layers :class:`MultiLevelRoIPooler` uses for SoCo.

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
                 force_roi_align: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            roi_layer=roi_align_cfg(out_size, sampling_ratio),
            out_channels=0,  # unused: tiles keep the channels of their map
            featmap_strides=list(featmap_strides),
            init_cfg=init_cfg)
        self.out_size = out_size
        self.level_to_feat = None if level_to_feat is None else list(level_to_feat)
        self.sampling_ratio = sampling_ratio
        self.force_roi_align = force_roi_align

    def feature_index(self, level: int) -> int:
        """Index of the feature map that serves montage ``level``."""
        if self.level_to_feat is None:
            return montage_level_to_feature(level, len(self.featmap_strides))
        if level >= len(self.level_to_feat):
            raise ValueError(f'level_to_feat={self.level_to_feat} has no entry for level {level}')
        return self.level_to_feat[level]

    def forward(self,
                feats: Sequence[Optional[Tensor]],
                batch: MontageBatch,
                num_levels: Optional[int] = None) -> Tensor:
        """Pool the tiles of ``batch`` from ``feats``.

        Args:
            feats (Sequence[Tensor | None]): Feature maps of a joint backbone pass; the
                montages of ``batch`` are rows :meth:`MontageBatch.montage_rows` of every map.
                Maps no pooled level reads may be ``None`` (:func:`pyramid_outputs`).
            batch (MontageBatch): The montages, their tile RoIs and levels.
            num_levels (int, optional): Pool only the tiles of levels ``[0, num_levels)``, the
                first ``batch.tile_offsets[num_levels]`` tiles. Defaults to every level.

        Returns:
            Tensor: ``(T, C, out_size, out_size)`` in the tile order of ``batch``.
        """
        if len(feats) != len(self.featmap_strides):
            raise ValueError(f'TilePooler got {len(feats)} feature maps but featmap_strides='
                             f'{self.featmap_strides}')
        L = batch.num_levels if num_levels is None else num_levels
        return torch.cat([self._pool_level(feats, batch, s) for s in range(L)])

    def feature_indices(self, num_levels: int) -> List[int]:
        """Indices of the feature maps that serve levels ``[0, num_levels)``."""
        return sorted({self.feature_index(s) for s in range(num_levels)})

    def _pool_level(self, feats: Sequence[Tensor], batch: MontageBatch, level: int) -> Tensor:
        rows = batch.montage_rows(level)
        if self._aligned(feats, batch, level):
            return self._crop_grid(feats, level, rows)
        rois = batch.rois[batch.level_slice(level)]
        idx = self.feature_index(level)
        return self.roi_layers[idx](feats[idx], rois.to(feats[idx].dtype))

    def _aligned(self, feats: Sequence[Tensor], batch: MontageBatch, level: int) -> bool:
        idx = self.feature_index(level)
        fh, fw = feats[idx].shape[-2:]
        H, W = batch.montages[level].shape[-2:]
        stride, rk = self.featmap_strides[idx], 2**level * self.out_size
        return (H == fh * stride and W == fw * stride and fh == rk and fw == rk
                and not self.force_roi_align)

    def _crop_grid(self, feats: Sequence[Tensor], level: int, rows: slice) -> Tensor:
        """``(M, C, r*k, r*k)`` rows of level ``level``'s map -> ``(M*r*r, C, k, k)``
        row-major tiles, like the montage."""
        feat, k, r = feats[self.feature_index(level)][rows], self.out_size, 2**level
        M, C = feat.shape[:2]
        tiles = feat.view(M, C, r, k, r, k).permute(0, 2, 4, 1, 3, 5)
        return tiles.reshape(M * r * r, C, k, k)

    def grid_tiles(self, feats: Sequence[Tensor], batch: MontageBatch, level: int) -> Tensor:
        """Every montage of ``batch`` (all levels) cut into the level-``level`` tile grid of
        the map serving that level: ``(batch.num_montages * 4**level, C, k, k)``.

        The official code runs its tile head on every FPN level of every image this way
        (``DetConvGpNonLinearHead.forward``, ``openselfsup/models/necks.py:437-465`` of
        GuoQiushan/MCL), so the head's BN statistics of a level include the tiles no loss reads.
        The tiles of the level's own montages are rows :meth:`grid_rows` of the result.
        """
        rows = slice(batch.start, batch.start + batch.num_montages)
        if self._aligned(feats, batch, level):
            return self._crop_grid(feats, level, rows)
        idx, r = self.feature_index(level), 2**level
        H, W = batch.montages[level].shape[-2:]
        ij = torch.arange(r, device=feats[idx].device, dtype=feats[idx].dtype)
        y, x = torch.meshgrid(ij * (H / r), ij * (W / r), indexing='ij')
        box = torch.stack([x, y, x + W / r, y + H / r], dim=-1).reshape(-1, 4)
        row = torch.arange(rows.start, rows.stop, device=box.device, dtype=box.dtype)
        rois = torch.cat([row.repeat_interleave(r * r)[:, None], box.repeat(len(row), 1)], 1)
        return self.roi_layers[idx](feats[idx], rois)

    @staticmethod
    def grid_rows(batch: MontageBatch, level: int) -> slice:
        """Rows of :meth:`grid_tiles` that hold the tiles of ``level``'s own montages, in
        the batch's tile order."""
        n = 4**level
        first = batch.montage_offsets[level] - batch.start
        return slice(first * n, (first + batch.montages[level].shape[0]) * n)
