"""SoCo: Selective Object COntrastive learning (Wei et al., NeurIPS 2021)."""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmpretrain.models.selfsup import BaseSelfSupervisor
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from ..utils.ema import MomentumEncoder
from ..utils.roi_pool import boxes_to_rois


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

    def embed(self, modules: Mapping[str, nn.Module], image: Tensor, rois: Tensor) -> Tensor:
        """Projected embedding of every roi of one view.

        Args:
            modules: :meth:`online_modules` or their EMA copies.
            image (Tensor): ``(B, 3, H, W)`` view.
            rois (Tensor): ``(B * K, 5)`` rois in the view's pixels.

        Returns:
            Tensor: ``(B * K, D)``.
        """
        feats = modules['neck'](modules['backbone'](image))
        x = modules['tile_head'](self.roi_pooler(feats, rois))
        if x.dim() == 4:  # C4: res5 output -> global average pooling
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return modules['projector']([x])[0]

    @staticmethod
    def view_rois(data_samples: List[DataSample], num_views: int) -> List[Tensor]:
        """``(B * K, 5)`` rois of every view from the packed ``view_boxes``."""
        if not data_samples or 'view_boxes' not in data_samples[0]:
            raise ValueError('SoCo needs data samples with view_boxes: use SoCoViews + '
                             'PackSoCoInputs in the pipeline')
        boxes = torch.stack([ds.view_boxes for ds in data_samples])  # B, V, K, 4
        if boxes.shape[1] != num_views:
            raise ValueError(f'{num_views} views in inputs but {boxes.shape[1]} in view_boxes')
        return [boxes_to_rois(boxes[:, v]) for v in range(num_views)]

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
        rois = [r.to(inputs[0].device) for r in self.view_rois(data_samples, num_views)]
        pairs = self.pairs(num_views)
        online_views = sorted({a for a, _ in pairs})
        target_views = sorted({b for _, b in pairs})
        online = {v: self.embed(self.online_modules(), inputs[v], rois[v]) for v in online_views}
        self.target_net.update_parameters(self.online_modules())
        target = {v: self.target_net(self.embed, inputs[v], rois[v]) for v in target_views}
        losses = self.head.loss(online, target, pairs)
        losses['ema_momentum'] = torch.tensor(self.target_net.current_momentum)
        return losses
