"""MCL: Multi-Level Contrastive Learning for dense prediction (montage pretext)."""
from typing import Dict, List, Optional, Sequence

import torch
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from ..utils.ema import MomentumEncoder
from ..utils.montage import MontageBatch
from .montage_base import MontageSupervisor

TARGET_SCOPES = ('read-levels', 'all', 'read-montages')


@MODELS.register_module()
class MCL(MontageSupervisor):
    """MCL self-supervised pre-training of backbone + FPN + a shared 4-conv head.

    Inputs are ``2 * num_levels`` augmented views of every image (the data pipeline's
    ``MultiView``): views ``[0, S)`` feed branch 1 (level ``s`` from view ``s``), views
    ``[S, 2S)`` branch 2. Each branch becomes montages of every level
    (:class:`~mcl_plugin.models.utils.MontageAssembler`); the montages run through backbone and
    neck (both branches in one batch, or one batch per branch); every tile is read from its FPN
    level (:class:`~mcl_plugin.models.utils.TilePooler`), passed through the shared ``tile_head``,
    average-pooled and projected. The online tiles of one branch are contrasted with the EMA
    target's embeddings of the other branch (:class:`MultiLevelContrastiveHead`), symmetrized.
    ``num_levels=1`` is the image-level MoCo v3 / BYOL-style baseline (Table 8a, row 1).
    The official code's BatchNorm grouping (``bn_scope='per_branch'``,
    ``tile_bn_scope='per_level'``) and its other recipe choices are config switches; see
    ``configs/mcl/README.md`` (fidelity table).

    Args:
        backbone (dict): Backbone, e.g. ``PEResNet`` (ResNet + stem positional embedding).
        neck (dict): ``mmdet.FPN`` or ``InterpolatedPyramid`` (C4 variant).
        tile_head (dict): ``ConvTileHead`` (FPN) or ``mmdet.ResLayer`` (C4, res5).
        projector (dict): Projector on the pooled tile features.
        head (dict): ``MultiLevelContrastiveHead`` (predictor + losses).
        num_levels (int): Montage levels ``S`` (1-4).
        assembler (dict): Montage assembler config.
        tile_pooler (dict): Level assignment + tile pooling config.
        bn_scope (str): ``'joint'`` (default) or the official ``'per_branch'`` backbone pass,
            see :class:`MontageSupervisor`.
        tile_bn_scope (str): ``'joint'`` (default) or the official ``'per_level'`` tile head +
            projector pass, see :class:`MontageSupervisor`.
        pyramid_rows (str): ``'all'`` (default) or ``'read'``: each FPN output conv only on
            the montages it serves, see :class:`MontageSupervisor`.
        target_scope (str): What the EMA target computes. ``'read-levels'`` (default): only
            the tiles of the levels the loss reads (:attr:`MultiLevelContrastiveHead.
            num_target_levels`; loss mode ``a``: level 0, i.e. P5 alone, no P2-P4 output convs
            and no tile head on levels 1-3), with the backbone still run on every montage (the
            official target's BatchNorm statistics). With ``tile_bn_scope='per_level'`` (the
            official grouping) this computes the same numbers as ``'all'``; with ``'joint'`` the
            target's tile head and projector normalise over the tiles the loss reads (the
            "loss tiles" of the joint pass). ``'all'``: every tile of every level, as before.
            ``'read-montages'``: also the backbone sees only the montages of the read levels
            (faster; its BatchNorm statistics come from those montages alone).
        base_momentum (float): EMA momentum in mmengine's convention
            (``target = (1 - m) * target + m * online``), annealed to ``end_momentum`` by a
            cosine; the paper's 0.99 -> 1 is ``0.01 -> 0``.
        end_momentum (float): Final momentum. Defaults to 0.
    """

    num_branches = 2
    # Read by TrainDataCheckHook: the negatives of every tile are the tiles of the *other*
    # images of the batch, so one image per process gives loss 0 and no gradient; the two
    # branches are the two halves of the views.
    min_images_per_batch = 2
    min_images_reason = ('its InfoNCE takes the negatives from the other images of the batch '
                         '(one image: loss 0 and gradient 0 at every step).')
    equal_branch_views = True

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 tile_head: dict,
                 projector: dict,
                 head: dict,
                 num_levels: int = 4,
                 assembler: dict = dict(type='MontageAssembler'),
                 tile_pooler: dict = dict(type='TilePooler'),
                 bn_scope: str = 'joint',
                 tile_bn_scope: str = 'joint',
                 pyramid_rows: str = 'all',
                 target_scope: str = 'read-levels',
                 base_momentum: float = 0.01,
                 end_momentum: float = 0.,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            tile_head=tile_head,
            head=head,
            num_levels=num_levels,
            assembler=assembler,
            tile_pooler=tile_pooler,
            bn_scope=bn_scope,
            tile_bn_scope=tile_bn_scope,
            pyramid_rows=pyramid_rows,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        if target_scope not in TARGET_SCOPES:
            raise ValueError(f'target_scope must be one of {TARGET_SCOPES}, got {target_scope!r}')
        self.target_scope = target_scope
        self.projector = MODELS.build(projector)
        self.target_net = MomentumEncoder(self.online_modules(), base_momentum, end_momentum)

    def online_modules(self) -> Dict[str, nn.Module]:
        """Modules mirrored by the EMA target (``target_net.module.<name>``)."""
        return dict(backbone=self.backbone,
                    neck=self.neck,
                    tile_head=self.tile_head,
                    projector=self.projector)

    def embed_tiles(self,
                    modules: Sequence[nn.Module],
                    batches: Sequence[MontageBatch],
                    num_levels: Optional[int] = None) -> List[Tensor]:
        """Projected tile embeddings of every batch (passes set by ``bn_scope`` and
        ``tile_bn_scope``).

        Args:
            modules: ``(backbone, neck, tile_head, projector)``, online or target.
            batches: Montage batches (one per branch).
            num_levels: Only levels ``[0, num_levels)`` (see :meth:`pooled_tiles`).

        Returns:
            list[Tensor]: ``(T_b, D)`` per batch, in the batch's tile order.
        """
        backbone, neck, tile_head, projector = modules
        return self.pooled_tiles(backbone, neck, tile_head, batches, projector, num_levels)

    @torch.no_grad()
    def embed_target(self, batches: Sequence[MontageBatch]) -> List[Tensor]:
        """The EMA target's embeddings of what the loss reads (``target_scope``)."""
        modules = list(self.target_net.module.values())
        if self.target_scope == 'all':
            return self.embed_tiles(modules, batches)
        num_levels = self.head.num_target_levels
        if self.target_scope == 'read-montages':
            return self.embed_tiles(modules, self.first_levels(batches, num_levels))
        return self.embed_tiles(modules, batches, num_levels)

    def loss(self, inputs: List[Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Symmetrized multi-level InfoNCE; see the class docstring."""
        batches = self.assemble(inputs)
        online = self.embed_tiles(list(self.online_modules().values()), batches)
        with torch.no_grad():
            self.target_net.update_parameters(self.online_modules())
        target = self.embed_target(batches)
        losses = self.head.loss(online, target, batches)
        losses['ema_momentum'] = torch.tensor(self.target_net.current_momentum)
        return losses
