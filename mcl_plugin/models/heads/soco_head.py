"""SoCo's heads: the R-CNN box head (4conv1fc, key-compatible with mmdet
``Shared4Conv1FCBBoxHead``) and the predictor + loss head."""
from typing import Dict, Hashable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from .conv_tile_head import ConvTileHead


@MODELS.register_module()
class ConvFCRoIHead(ConvTileHead):
    """:class:`ConvTileHead` (``num_convs`` x 3x3 conv + norm + ReLU) followed by flatten and
    ``num_fcs`` x (Linear + ReLU): the feature extractor of mmdet's ``ConvFCBBoxHead`` without
    its classifier and regressor.

    Parameters are named ``shared_convs.{i}.conv/.bn`` and ``shared_fcs.{j}``, exactly like
    ``Shared4Conv1FCBBoxHead`` (``num_convs=4, num_fcs=1``), so the converter hands them over
    to ``roi_head.bbox_head.*`` by a prefix rename. SoCo's official head is this with
    7x7 RoIs, 256 channels and fc 1024.

    Args:
        in_channels (int): RoI feature channels. Defaults to 256.
        conv_channels (int): Channels of every conv. Defaults to 256.
        num_convs (int): Number of convs. Defaults to 4.
        num_fcs (int): Number of fcs. Defaults to 1.
        roi_feat_size (int): Side of the pooled RoI features. Defaults to 7.
        fc_out_channels (int): Width of the fcs. Defaults to 1024.
        norm_cfg (dict, optional): Norm of the convs. Defaults to BN.
    """

    def __init__(self,
                 in_channels: int = 256,
                 conv_channels: int = 256,
                 num_convs: int = 4,
                 num_fcs: int = 1,
                 roi_feat_size: int = 7,
                 fc_out_channels: int = 1024,
                 norm_cfg: Optional[dict] = dict(type='BN'),
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Xavier', distribution='uniform', override=dict(name='shared_fcs'))
            ]
        super().__init__(in_channels=in_channels,
                         conv_channels=conv_channels,
                         num_convs=num_convs,
                         norm_cfg=norm_cfg,
                         init_cfg=init_cfg)
        last = (conv_channels if num_convs else in_channels) * roi_feat_size**2
        self.roi_feat_size = roi_feat_size
        self.out_channels = fc_out_channels if num_fcs else last
        self.shared_fcs = nn.ModuleList(
            nn.Linear(last if i == 0 else fc_out_channels, fc_out_channels)
            for i in range(num_fcs))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """``(R, C, s, s)`` RoI features -> ``(R, fc_out_channels)``."""
        if x.shape[-1] != self.roi_feat_size or x.shape[-2] != self.roi_feat_size:
            raise ValueError(f'ConvFCRoIHead expects {self.roi_feat_size}x{self.roi_feat_size} '
                             f'RoI features, got {tuple(x.shape[-2:])}')
        x = super().forward(x).flatten(1)
        for fc in self.shared_fcs:
            x = self.relu(fc(x))
        return x


@MODELS.register_module()
class SoCoHead(BaseModule):
    """Predictor and loss of SoCo: online views regress the target views (Eq. 5-6).

    For every ``(a, b)`` pair, the predictor output of online view ``a`` regresses the target
    projection of view ``b`` with ``loss`` (``CosineSimilarityLoss``, ``scale_factor=2`` is the
    paper's ``-2 cos``); the two directions of a view pair are summed into ``loss_v{i}_v{j}``.
    Each online view goes through the predictor once, however many pairs it is in.

    Args:
        predictor (dict): Predictor, e.g. ``NonLinearNeck``.
        loss (dict): Regression loss, e.g. ``CosineSimilarityLoss``.
        init_cfg (dict, optional): Initialization config.
    """

    def __init__(self, predictor: dict, loss: dict, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.predictor = MODELS.build(predictor)
        self.loss_module = MODELS.build(loss)

    def loss(self,
             online: Mapping[Hashable, Tensor],
             target: Mapping[Hashable, Tensor],
             pairs: Sequence[Tuple[Hashable, Hashable]],
             levels: Optional[Mapping[Hashable, Tensor]] = None,
             ids: Optional[Mapping[Hashable, Tensor]] = None) -> Dict[str, Tensor]:
        """Losses of every ``(online, target)`` pair.

        Keys are view indices or box sets ``(view, partner)`` (the view names the loss).

        Args:
            online (Mapping): ``(R, D)`` online projections, or ``(P, R, D)`` projections of
                every roi on every level (the official per-level mode).
            target (Mapping): Target projections, same layout.
            pairs (Sequence[tuple]): ``(online key, target key)`` pairs.
            levels (Mapping, optional): ``(R,)`` level of every roi (per-level mode): the
                predictor runs once per level (BatchNorm statistics per level) and each roi
                keeps its level's output.
            ids (Mapping, optional): ``(B, K)`` proposal ids (per-level mode): box ``i`` of one
                set matches every box of the same id in the other set, and the loss is
                ``shift - scale * mean_b [sum of matched cosines / number of matches]``, the
                official ``regression_loss_bboxs_aware`` (``SoCo_FPN.py:119-128``).

        Returns:
            dict[str, Tensor]: ``loss_v{i}_v{j}`` (both directions of the pair Vi-Vj) and
            ``cos_v{i}_v{j}`` (mean cosine of the directions, no gradient).
        """
        if levels is None:
            pred = {k: self.predictor([z])[0] for k, z in online.items()}
        else:
            pred = {k: self.pick(torch.stack([self.predictor([x])[0] for x in z]), levels[k])
                    for k, z in online.items()}
            target = {k: self.pick(z, levels[k]) for k, z in target.items()}
        losses: Dict[str, Tensor] = {}
        counts: Dict[str, int] = {}
        for a, b in pairs:
            va, vb = (k[0] if isinstance(k, tuple) else k for k in (a, b))
            key = f'v{min(va, vb) + 1}_v{max(va, vb) + 1}'
            if ids is None:
                loss = self.loss_module(pred[a], target[b].detach())
                with torch.no_grad():
                    cos = F.cosine_similarity(pred[a], target[b], dim=1).mean()
            else:
                loss, cos = self.matched_loss(pred[a], target[b].detach(), ids[a], ids[b])
            losses[f'loss_{key}'] = losses.get(f'loss_{key}', 0) + loss
            losses[f'cos_{key}'] = losses.get(f'cos_{key}', 0) + cos
            counts[key] = counts.get(key, 0) + 1
        for key, n in counts.items():
            losses[f'cos_{key}'] = losses[f'cos_{key}'] / n
        return losses

    @staticmethod
    def pick(per_level: Tensor, levels: Tensor) -> Tensor:
        """``(P, R, D)`` -> ``(R, D)``: row ``r`` of level ``levels[r]``."""
        return per_level[levels, torch.arange(per_level.shape[1], device=levels.device)]

    def matched_loss(self, pred: Tensor, target: Tensor, ids_a: Tensor,
                     ids_b: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-image mean cosine over id-matched box pairs, scaled by the loss module's
        ``scale_factor`` / ``shift_factor`` (``-2 cos`` with SoCo's 2 / 0).

        Returns:
            tuple[Tensor, Tensor]: the loss and the mean matched cosine (no gradient).
        """
        b, k = ids_a.shape
        sim = torch.bmm(F.normalize(pred, dim=1).view(b, k, -1),
                        F.normalize(target, dim=1).view(b, ids_b.shape[1], -1).transpose(1, 2))
        corr = (ids_a[:, :, None] == ids_b[:, None, :]).to(sim.dtype)
        cos = ((sim * corr).sum((1, 2)) / (corr.sum((1, 2)) + 1e-6)).mean()
        scale = getattr(self.loss_module, 'scale_factor', 1.)
        shift = getattr(self.loss_module, 'shift_factor', 0.)
        return shift - scale * cos, cos.detach()


__all__ = ['ConvFCRoIHead', 'SoCoHead']
