"""SoCo's heads: the R-CNN box head (4conv1fc, key-compatible with mmdet
``Shared4Conv1FCBBoxHead``) and the predictor + loss head."""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

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

    def loss(self, online: Mapping[int, Tensor], target: Mapping[int, Tensor],
             pairs: Sequence[Tuple[int, int]]) -> Dict[str, Tensor]:
        """Losses of every ``(online view, target view)`` pair.

        Args:
            online (Mapping[int, Tensor]): ``(R, D)`` online projections by view index.
            target (Mapping[int, Tensor]): ``(R, D)`` target projections by view index.
            pairs (Sequence[tuple]): ``(online view, target view)`` pairs.

        Returns:
            dict[str, Tensor]: ``loss_v{i}_v{j}`` (both directions of the pair Vi-Vj) and
            ``cos_v{i}_v{j}`` (mean cosine of the directions, no gradient).
        """
        pred = {v: self.predictor([z])[0] for v, z in online.items()}
        losses: Dict[str, Tensor] = {}
        counts: Dict[str, int] = {}
        for a, b in pairs:
            key = f'v{min(a, b) + 1}_v{max(a, b) + 1}'
            loss = self.loss_module(pred[a], target[b].detach())
            losses[f'loss_{key}'] = losses.get(f'loss_{key}', 0) + loss
            with torch.no_grad():
                cos = F.cosine_similarity(pred[a], target[b], dim=1).mean()
            losses[f'cos_{key}'] = losses.get(f'cos_{key}', 0) + cos
            counts[key] = counts.get(key, 0) + 1
        for key, n in counts.items():
            losses[f'cos_{key}'] = losses[f'cos_{key}'] / n
        return losses


__all__ = ['ConvFCRoIHead', 'SoCoHead']
