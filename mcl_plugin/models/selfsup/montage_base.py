"""Shared skeleton of the montage pretext (self-supervised MCL and supervised MCL)."""
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmdet.models.necks import FPN
from mmpretrain.models.selfsup import BaseSelfSupervisor
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from ..utils.montage import MontageBatch, joint_montages
from ..utils.pyramid import pyramid_outputs

BN_SCOPES = ('joint', 'per_branch')
TILE_BN_SCOPES = ('joint', 'per_level')
PYRAMID_ROWS = ('all', 'read')


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
        bn_scope (str): Which montages share one backbone/neck pass, hence BatchNorm batch
            statistics. ``'joint'`` (default): every branch in one pass. ``'per_branch'``: one
            pass per view branch, as the official code does (``encoder_q(img_qs)`` and
            ``encoder_q(img_ks)``, ``openselfsup/models/mcl.py:177-183`` of GuoQiushan/MCL).
        tile_bn_scope (str): Which tiles share one tile-head (and projector) pass.
            ``'joint'`` (default): the loss tiles of every level and branch together.
            ``'per_level'``: per branch and per level, the whole montage batch of the branch cut
            into that level's grid on the level's feature map, the unused tiles included
            (official ``DetConvGpNonLinearHead.forward``, ``necks.py:437-465``). The layers are
            shared across levels (one set of BN parameters and running statistics, updated
            once per level), so checkpoints keep their keys.
        pyramid_rows (str): Which montages each FPN output conv runs on. ``'all'`` (default):
            every montage, as ``mmdet.FPN``. ``'read'`` (``tile_bn_scope='joint'`` only): the
            output conv of level ``s``'s map runs only on the montages of level ``s``, the only
            ones whose tiles it serves (at S = 4, batch 32: P2's 3x3 conv on 2 of 86 montages).
            The tiles get the same values, except that an FPN with BatchNorm then normalises
            each output over the montages it serves: a named variant, not the official
            statistics.
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
                 bn_scope: str = 'joint',
                 tile_bn_scope: str = 'joint',
                 pyramid_rows: str = 'all',
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        if not 1 <= num_levels <= 4:
            raise ValueError(f'num_levels must be in 1..4, got {num_levels}')
        if bn_scope not in BN_SCOPES:
            raise ValueError(f'bn_scope must be one of {BN_SCOPES}, got {bn_scope!r}')
        if tile_bn_scope not in TILE_BN_SCOPES:
            raise ValueError(f'tile_bn_scope must be one of {TILE_BN_SCOPES}, '
                             f'got {tile_bn_scope!r}')
        if pyramid_rows not in PYRAMID_ROWS:
            raise ValueError(f'pyramid_rows must be one of {PYRAMID_ROWS}, got {pyramid_rows!r}')
        if pyramid_rows == 'read' and tile_bn_scope != 'joint':
            raise ValueError("pyramid_rows='read' needs tile_bn_scope='joint': the per-level "
                             'tile-head pass reads every montage on every level')
        head = dict(head, num_levels=num_levels) if isinstance(head, dict) else head
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.num_levels = num_levels
        self.bn_scope = bn_scope
        self.tile_bn_scope = tile_bn_scope
        self.pyramid_rows = pyramid_rows
        self.assembler = MODELS.build(assembler)
        self.tile_pooler = MODELS.build(tile_pooler)
        self.tile_head = MODELS.build(tile_head)
        if pyramid_rows == 'read' and not (isinstance(self.neck, FPN) and
                                           self.neck.num_outs == len(self.neck.lateral_convs)):
            raise ValueError("pyramid_rows='read' needs an mmdet FPN without extra levels as "
                             f'the neck, got {type(self.neck).__name__}')

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
        joint backbone pass (each batch starts where the previous one's montages end) or, with
        ``bn_scope='per_branch'``, for one pass per branch (every batch starts at row 0)."""
        self.check_views(inputs)
        S, start, batches = self.num_levels, 0, []
        for i in range(self.num_branches):
            batches.append(self.assembler(inputs[i * S:(i + 1) * S], start=start))
            if self.bn_scope == 'joint':
                start += batches[-1].num_montages
        return batches

    def first_levels(self, batches: Sequence[MontageBatch],
                     num_levels: int) -> List[MontageBatch]:
        """``batches`` cut to levels ``[0, num_levels)``, laid out for their own backbone
        pass(es) as :meth:`assemble` lays out full batches (``bn_scope``)."""
        start, out = 0, []
        for b in batches:
            out.append(b.first_levels(num_levels, start=start))
            if self.bn_scope == 'joint':
                start += out[-1].num_montages
        return out

    def pooled_tiles(self,
                     backbone: nn.Module,
                     neck: nn.Module,
                     tile_head: nn.Module,
                     batches: Sequence[MontageBatch],
                     projector: Optional[Callable] = None,
                     num_levels: Optional[int] = None) -> List[Tensor]:
        """Average-pooled tile-head features of every batch (projected if ``projector``).

        Backbone and neck run once on all batches or once per batch (``bn_scope``); the tile
        head and projector once on all pooled tiles or once per branch and level
        (``tile_bn_scope``). The neck computes only the maps the pooled levels read
        (:func:`~mcl_plugin.models.utils.pyramid_outputs`: for an FPN, no P2 when no level
        reads it; the same numbers as the whole FPN).

        Args:
            backbone, neck, tile_head: Online or target modules.
            batches: Montage batches from :meth:`assemble`.
            projector: Optional module applied to the pooled ``(N, C)`` features, called like an
                mmpretrain neck (``projector([x])[0]``).
            num_levels: Embed only the tiles of levels ``[0, num_levels)`` (each batch's output
                is then the first ``batch.tile_offsets[num_levels]`` rows of its tile order).
                The backbone still sees every montage of ``batches`` and, with
                ``tile_bn_scope='per_level'``, each level's pass still covers every montage, so
                BatchNorm statistics are those of the full computation. Defaults to all levels.

        Returns:
            list[Tensor]: ``(T_b, C)`` (or projected ``(T_b, D)``) per batch, in the batch's
            tile order.
        """
        L = batches[0].num_levels if num_levels is None else num_levels
        needed = self.tile_pooler.feature_indices(L)

        def pyramid(x: Tensor, group: Sequence[MontageBatch]) -> List[Optional[Tensor]]:
            rows = None
            if self.pyramid_rows == 'read':
                rows = {}
                for s in range(L):
                    r = [torch.arange(b.montage_rows(s).start, b.montage_rows(s).stop,
                                      device=x.device) for b in group]
                    rows[self.tile_pooler.feature_index(s)] = torch.cat(r)
            return pyramid_outputs(neck, backbone(x), needed, rows)

        if self.bn_scope == 'joint':
            feats = pyramid(joint_montages(batches), batches)
            passes = [(feats, b) for b in batches]
        else:
            passes = [(pyramid(joint_montages([b]), [b]), b) for b in batches]

        def embed(tiles: Tensor) -> Tensor:
            x = F.adaptive_avg_pool2d(tile_head(tiles), 1).flatten(1)
            return x if projector is None else projector([x])[0]

        if self.tile_bn_scope == 'per_level':
            out = []
            for f, b in passes:
                # finest level first, as the official loop over [P2, ..., P5]: the BN running
                # statistics end up as the official code's
                levels = {
                    s: embed(self.tile_pooler.grid_tiles(f, b, s))[self.tile_pooler.grid_rows(b, s)]
                    for s in reversed(range(L))
                }
                out.append(torch.cat([levels[s] for s in range(L)]))
            return out
        tiles = [self.tile_pooler(f, b, num_levels=L) for f, b in passes]
        return list(embed(torch.cat(tiles)).split([t.shape[0] for t in tiles]))
