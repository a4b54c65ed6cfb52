"""Shared skeleton of the montage pretext (self-supervised MCL and supervised MCL)."""
from typing import List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup import BaseSelfSupervisor
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from ..utils.montage import MontageBatch, joint_montages


class MontageSupervisor(BaseSelfSupervisor):
    """Backbone + neck + montage assembler + tile pooler + shared tile head.

    Subclasses add what sits on top of the pooled tile features (projector + EMA target for
    MCL, a classifier for MCL-sup) and set ``num_branches``, the number of view branches (each
    ``num_levels`` views) the inputs hold.

    Args:
        backbone (dict): Backbone config.
        neck (dict): Pyramid (``mmdet.FPN``) or ``InterpolatedPyramid`` (C4 variant).
        tile_head (dict): ``ConvTileHead`` (FPN) or ``mmdet.ResLayer`` (C4, res5).
        head (dict): Loss head.
        num_levels (int): Montage levels ``S`` (1-4).
        assembler (dict): ``MontageAssembler`` config.
        tile_pooler (dict): ``TilePooler`` config (level assignment + pooling).
    """

    num_branches: int = 1

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 tile_head: dict,
                 head: dict,
                 num_levels: int = 4,
                 assembler: dict = dict(type='MontageAssembler'),
                 tile_pooler: dict = dict(type='TilePooler'),
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not 1 <= num_levels <= 4:
            raise ValueError(f'num_levels must be in 1..4, got {num_levels}')
        head = dict(head, num_levels=num_levels) if isinstance(head, dict) else head
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.num_levels = num_levels
        self.assembler = MODELS.build(assembler)
        self.tile_pooler = MODELS.build(tile_pooler)
        self.tile_head = MODELS.build(tile_head)

    def check_views(self, inputs: List[Tensor]) -> None:
        """Raise a readable error unless ``inputs`` holds ``num_branches * S`` views."""
        S, branches = self.num_levels, self.num_branches
        if not isinstance(inputs, (list, tuple)) or len(inputs) != branches * S:
            got = len(inputs) if isinstance(inputs, (list, tuple)) else type(inputs).__name__
            num_views = ', '.join([str(S)] * branches)
            raise ValueError(f'{type(self).__name__} with num_levels={S} needs {branches * S} '
                             f'views per image (MultiView num_views=[{num_views}] in the '
                             f'pipeline), got {got}')

    def assemble(self, inputs: List[Tensor]) -> List[MontageBatch]:
        """Montages of every branch from ``num_branches * num_levels`` views, laid out for one
        joint backbone pass (each batch starts where the previous one's montages end)."""
        self.check_views(inputs)
        S, start, batches = self.num_levels, 0, []
        for i in range(self.num_branches):
            batches.append(self.assembler(inputs[i * S:(i + 1) * S], start=start))
            start += batches[-1].num_montages
        return batches

    def pooled_tiles(self, backbone: nn.Module, neck: nn.Module, tile_head: nn.Module,
                     batches: Sequence[MontageBatch]) -> List[Tensor]:
        """Average-pooled tile-head features of every batch, one backbone/neck pass.

        Args:
            backbone, neck, tile_head: Online or target modules.
            batches: Montage batches assembled with consecutive ``start`` rows
                (:meth:`assemble`).

        Returns:
            list[Tensor]: ``(T_b, C)`` per batch, in the batch's tile order.
        """
        feats = neck(backbone(joint_montages(batches)))
        tiles = [self.tile_pooler(feats, b) for b in batches]
        x = tile_head(torch.cat(tiles))
        pooled = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return list(pooled.split([t.shape[0] for t in tiles]))
