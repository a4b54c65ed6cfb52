"""SoCo: Selective Object COntrastive learning (Wei et al., NeurIPS 2021)."""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from ..utils.ema import MomentumEncoder
from ..utils.pyramid import pyramid_outputs
from ..utils.roi_pool import boxes_to_rois

#: A box set: ``(view, partner)``. V1 has one box set per partner view when the views have their
#: own proposals (``v1_boxes``); every other set is ``(view, None)``.
BoxSet = Tuple[int, Optional[int]]


@MODELS.register_module()
class SoCo(BaseSelfSupervisor):
    """Object-level BYOL over selective-search proposals, with a detector-shaped network.

    Each view (``SoCoViews``: V1, V2, V3 and optionally V4, with ``K`` matched proposals per
    image) goes through backbone and neck; every proposal is RoI-aligned on the level its size
    in that view selects (``roi_pooler``), passed through the R-CNN ``tile_head``
    (``ConvFCRoIHead``: 4conv1fc, or res5 + global average pooling for C4) and the
    ``projector``. The online predictor output of a proposal in V1 regresses the EMA target's
    projection of the same proposal in every other view, and the other views' online outputs
    regress V1's target projection (the symmetrized loss of Eq. 5-6, computed by
    :class:`~mcl_plugin.models.heads.SoCoHead`):

    ``L = sum_{j>1} [ l(q(g(h_1)), g'(h'_j)) + l(q(g(h_j)), g'(h'_1)) ]`` with ``l`` the
    head's ``CosineSimilarityLoss`` (``scale_factor=2`` is the paper's ``-2 cos``) averaged
    over the ``B * K`` matched proposals. The EMA target is a :class:`MomentumEncoder` over
    ``backbone``, ``neck`` (an ``nn.Identity`` for C4), ``tile_head`` and ``projector``.

    Two pooling modes (``pool_all_levels``):

    * ``False`` (the paper's reading, the class default): each box is pooled on its level only
      and one ``tile_head`` / projector / predictor pass per view takes the boxes of all levels
      (one BatchNorm batch); box ``k`` of a view matches box ``k`` of the other.
    * ``True`` (the official code, ``SoCo_FPN.py:143-286``): every box is RoI-aligned on every
      pyramid level (:meth:`MultiLevelRoIPooler.pool_every_level`) and the head, projector and
      predictor run once per level (BatchNorm statistics per view, box set and level); the loss
      picks each box's assigned level and matches boxes by proposal id, per image
      (``regression_loss_bboxs_aware``, ``bboxs_utils.py:378-410``); see
      :meth:`SoCoHead.loss`. With views that have their own proposals (``v1_boxes`` from
      ``SoCoViews(independent_v3=True)``) V1 is pooled once per partner view with the V1 boxes
      of that view's proposals (``bboxs1_12`` / ``bboxs1_13``), from one backbone pass.

    Args:
        backbone (dict): ResNet (``out_indices=(0, 1, 2, 3)`` for FPN, ``(2,)`` with 3 stages
            for C4).
        neck (dict, optional): ``mmdet.FPN`` with 4 outputs (P2-P5); None for C4.
        tile_head (dict): ``ConvFCRoIHead`` (FPN) or ``mmdet.ResLayer`` (C4 res5). The name
            ``tile_head`` is what the converter maps onto ``roi_head.bbox_head`` /
            ``roi_head.shared_head``.
        projector (dict): ``NonLinearNeck`` on the head output.
        head (dict): ``SoCoHead`` (predictor + loss).
        roi_pooler (dict): ``MultiLevelRoIPooler``.
        base_momentum (float): EMA momentum in mmengine's convention
            (``target = (1 - m) * target + m * online``), cosine-annealed to ``end_momentum``;
            the paper's tau 0.99 -> 1 is ``0.01 -> 0``.
        end_momentum (float): Final momentum. Defaults to 0.
        loss_pairs (Sequence[tuple], optional): ``(online view, target view)`` pairs. Defaults
            to ``(0, j)`` and ``(j, 0)`` for every view ``j > 0``.
        pool_all_levels (bool): The official per-level mode (see above). Defaults to False.
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict],
                 tile_head: dict,
                 projector: dict,
                 head: dict,
                 roi_pooler: dict = dict(type='MultiLevelRoIPooler'),
                 base_momentum: float = 0.01,
                 end_momentum: float = 0.,
                 loss_pairs: Optional[Sequence[Tuple[int, int]]] = None,
                 pool_all_levels: bool = False,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.roi_pooler = MODELS.build(roi_pooler)
        self.tile_head = MODELS.build(tile_head)
        self.projector = MODELS.build(projector)
        self.loss_pairs = None if loss_pairs is None else [tuple(p) for p in loss_pairs]
        self.pool_all_levels = pool_all_levels
        self.target_net = MomentumEncoder(self.online_modules(), base_momentum, end_momentum)

    def online_modules(self) -> Dict[str, nn.Module]:
        """Modules mirrored by the EMA target (``target_net.module.<name>``); C4 has an
        ``nn.Identity`` neck (no parameters)."""
        return dict(backbone=self.backbone,
                    neck=self.neck if self.with_neck else nn.Identity(),
                    tile_head=self.tile_head,
                    projector=self.projector)

    def pairs(self, num_views: int) -> List[Tuple[int, int]]:
        """``(online view, target view)`` pairs of the loss."""
        if self.loss_pairs is not None:
            bad = [p for p in self.loss_pairs if max(p) >= num_views]
            if bad:
                raise ValueError(f'loss_pairs {bad} refer to views beyond the {num_views} '
                                 'views in the batch')
            return list(self.loss_pairs)
        return [p for j in range(1, num_views) for p in ((0, j), (j, 0))]

    def project(self, modules: Mapping[str, nn.Module], rois_feats: Tensor) -> Tensor:
        """``tile_head`` (+ global average pooling for C4) and projector on pooled features."""
        x = modules['tile_head'](rois_feats)
        if x.dim() == 4:  # C4: res5 output -> global average pooling
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return modules['projector']([x])[0]

    def embed(self,
              modules: Mapping[str, nn.Module],
              image: Tensor,
              rois: Union[Tensor, Sequence[Tensor]],
              read_levels_only: bool = False) -> Union[Tensor, List[Tensor]]:
        """Projected embeddings of the rois of one view (one backbone pass).

        Args:
            modules: :meth:`online_modules` or their EMA copies.
            image (Tensor): ``(B, 3, H, W)`` view.
            rois (Tensor | Sequence[Tensor]): ``(R, 5)`` rois in the view's pixels, or several
                box sets of the view.
            read_levels_only (bool): Compute only the pyramid levels the rois are assigned to
                (:func:`~mcl_plugin.models.utils.pyramid_outputs`; the same numbers). For the
                target, which needs no gradient: online, the unread levels must stay in the
                graph (mmdet's zero term) for DDP. Ignored with ``pool_all_levels``.

        Returns:
            Tensor | list[Tensor]: per box set ``(R, D)`` (one level per roi, one head batch
            for all sets of the view) or, with ``pool_all_levels``, ``(P, R, D)`` (every
            level, one head batch per set and level).
        """
        sets = [rois] if isinstance(rois, Tensor) else list(rois)
        needed = None
        if read_levels_only and not self.pool_all_levels:
            num_maps = len(self.roi_pooler.featmap_strides)
            needed = self.roi_pooler.map_roi_levels(torch.cat(sets), num_maps).unique().tolist()
        feats = pyramid_outputs(modules['neck'], modules['backbone'](image), needed)
        if self.pool_all_levels:
            out = [
                torch.stack([self.project(modules, x) for x in
                             self.roi_pooler.pool_every_level(feats, r, image.shape[-2:])])
                for r in sets
            ]
        else:
            out = list(self.project(modules, self.roi_pooler(feats, torch.cat(sets)))
                       .split([len(r) for r in sets]))
        return out[0] if isinstance(rois, Tensor) else out

    @staticmethod
    def box_sets(data_samples: List[DataSample], num_views: int,
                 pairs: Sequence[Tuple[int, int]]) -> Dict[BoxSet, Tuple[Tensor, Tensor]]:
        """``(B * K, 5)`` rois and ``(B, K)`` proposal ids of every box set of the pairs.

        V1's set paired with view ``j`` uses ``v1_boxes[j]`` when the samples carry it (views
        with their own proposals) and the ids ``v1_ids[j]`` (the official pads V1's and view
        ``j``'s sets independently), else ``view_ids[j]``; other ids come from ``view_ids``,
        else the shared ``proposal_ids``, else the box index (box ``k`` matches box ``k``).
        """
        if not data_samples or 'view_boxes' not in data_samples[0]:
            raise ValueError('SoCo needs data samples with view_boxes: use SoCoViews + '
                             'PackSoCoInputs in the pipeline')
        boxes = torch.stack([ds.view_boxes for ds in data_samples])  # B, V, K, 4
        if boxes.shape[1] != num_views:
            raise ValueError(f'{num_views} views in inputs but {boxes.shape[1]} in view_boxes')
        first = data_samples[0]
        v1 = torch.stack([ds.v1_boxes for ds in data_samples]) if 'v1_boxes' in first else None
        if 'view_ids' in first:
            ids = torch.stack([ds.view_ids for ds in data_samples])  # B, V, K
        elif 'proposal_ids' in first:
            ids = torch.stack([ds.proposal_ids for ds in data_samples])[:, None].expand(
                -1, num_views, -1)
        else:
            ids = torch.arange(boxes.shape[2]).expand(boxes.shape[0], num_views, -1)
        v1_ids = torch.stack([ds.v1_ids for ds in data_samples]) if 'v1_ids' in first else ids
        sets: Dict[BoxSet, Tuple[Tensor, Tensor]] = {}
        for a, b in pairs:
            for v, partner in ((a, b), (b, a)):
                if v == 0 and v1 is not None and partner != 0:
                    sets[(0, partner)] = (boxes_to_rois(v1[:, partner]), v1_ids[:, partner])
                else:
                    sets[(v, None)] = (boxes_to_rois(boxes[:, v]), ids[:, v])
        return sets

    @staticmethod
    def set_of(view: int, partner: int, sets: Mapping[BoxSet, object]) -> BoxSet:
        """The box set of ``view`` in its pair with ``partner``."""
        return (view, partner) if (view, partner) in sets else (view, None)

    def loss(self, inputs: List[Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Symmetrized negative-cosine loss over matched proposals; see the class docstring.

        Returns:
            dict[str, Tensor]: ``loss_v1_v{j}`` (both directions of the pair V1-Vj) and the
            diagnostics ``cos_v1_v{j}`` (mean cosine of the two directions, no gradient) and
            ``ema_momentum``.
        """
        if not isinstance(inputs, (list, tuple)) or len(inputs) < 2:
            raise ValueError('SoCo needs a list of >= 2 views (SoCoViews + PackSoCoInputs)')
        num_views = len(inputs)
        pairs = self.pairs(num_views)
        sets = {k: (r.to(inputs[0].device), i.to(inputs[0].device))
                for k, (r, i) in self.box_sets(data_samples, num_views, pairs).items()}
        set_pairs = [(self.set_of(a, b, sets), self.set_of(b, a, sets)) for a, b in pairs]
        online_sets = sorted({a for a, _ in set_pairs}, key=str)
        target_sets = sorted({b for _, b in set_pairs}, key=str)

        def run(fn, keys):
            out = {}
            for v in sorted({k[0] for k in keys}):
                mine = [k for k in keys if k[0] == v]
                out.update(zip(mine, fn(inputs[v], [sets[k][0] for k in mine])))
            return out

        online = run(lambda img, rois: self.embed(self.online_modules(), img, rois), online_sets)
        self.target_net.update_parameters(self.online_modules())
        target = run(lambda img, rois: self.target_net(self.embed, img, rois, True), target_sets)
        if self.pool_all_levels:
            levels = {k: self.roi_pooler.map_roi_levels(r, len(self.roi_pooler.featmap_strides))
                      for k, (r, _) in sets.items()}
            losses = self.head.loss(online, target, set_pairs, levels=levels,
                                    ids={k: i for k, (_, i) in sets.items()})
        else:
            losses = self.head.loss(online, target, set_pairs)
        losses['ema_momentum'] = torch.tensor(self.target_net.current_momentum)
        return losses
