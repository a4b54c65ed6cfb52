"""Multi-level classification of montage tiles (supervised MCL, App. A.1, Fig. 4)."""
from typing import Dict, Optional, Sequence

import torch
from mmengine.model import BaseModule
from torch import Tensor, nn

from mcl_plugin.registry import MODELS

from ..utils.montage import MontageBatch


@MODELS.register_module()
class MultiLevelClsHead(BaseModule):
    """A linear classifier shared by all levels + per-level cross-entropy and top-1 accuracy.

    Args:
        num_classes (int): Number of classes.
        in_channels (int): Pooled tile feature channels.
        num_levels (int): Montage levels ``S``.
        level_weights (Sequence[float], optional): Weight of each level's loss. Defaults to
            ``1 / 2**(s + 1)`` as in the self-supervised MCL.
        loss (dict): Classification loss. Defaults to mmpretrain ``CrossEntropyLoss``.
    """

    def __init__(self,
                 num_classes: int,
                 in_channels: int = 256,
                 num_levels: int = 4,
                 level_weights: Optional[Sequence[float]] = None,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01)
                 ) -> None:
        super().__init__(init_cfg=init_cfg)
        if level_weights is None:
            level_weights = [1 / 2**(s + 1) for s in range(num_levels)]
        if len(level_weights) != num_levels:
            raise ValueError(f'level_weights has {len(level_weights)} entries for '
                             f'num_levels={num_levels}')
        self.num_classes = num_classes
        self.num_levels = num_levels
        self.level_weights = list(level_weights)
        self.fc = nn.Linear(in_channels, num_classes)
        self.loss_module = MODELS.build(loss)

    def forward(self, feats: Tensor) -> Tensor:
        return self.fc(feats)

    def loss(self, feats: Tensor, batch: MontageBatch, labels: Tensor) -> Dict[str, Tensor]:
        """``loss_level{s}`` (weighted) and ``acc_level{s}`` (top-1, %) for every level.

        Args:
            feats (Tensor): ``(T, C)`` pooled tile features in the tile order of ``batch``.
            batch (MontageBatch): The tiles' montage batch (source image and level per tile).
            labels (Tensor): ``(B,)`` class of every input image.
        """
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ValueError(f'labels must be in [0, {self.num_classes}), got '
                             f'[{int(labels.min())}, {int(labels.max())}]: check num_classes')
        labels, levels = labels[batch.src], batch.level
        logits = self(feats)
        out = {}
        for s in range(self.num_levels):
            m = levels == s
            out[f'loss_level{s}'] = self.level_weights[s] * self.loss_module(logits[m], labels[m])
            with torch.no_grad():
                out[f'acc_level{s}'] = (logits[m].argmax(1) == labels[m]).float().mean() * 100
        return out
