"""Supervised MCL: the montage pretext with labels (multi-level cross-entropy)."""
from typing import Dict, List

import torch
from mmpretrain.structures import DataSample
from torch import Tensor

from mcl_plugin.registry import MODELS

from .montage_base import MontageSupervisor


@MODELS.register_module()
class MCLSupervised(MontageSupervisor):
    """Supervised montage pre-training of backbone + FPN + shared tile head.

    Inputs are ``num_levels`` augmented views of every labelled image (``MultiView``
    ``num_views=[S]``). Level ``s`` is assembled into montages, every tile is pooled from its
    FPN level, passed through the shared tile head and average-pooled, and the classifier of
    :class:`MultiLevelClsHead` predicts the label of the tile's source image (the head reads
    the tile order from the montage batch). ``num_levels=1`` is plain supervised pre-training of
    the same network (the "vanilla" twin at equal architecture).

    Args: see :class:`MontageSupervisor`; ``head`` is a ``MultiLevelClsHead``.
    """

    def loss(self, inputs: List[Tensor], data_samples: List[DataSample],
             **kwargs) -> Dict[str, Tensor]:
        """Multi-level cross-entropy of the tiles; see the class docstring."""
        batches = self.assemble(inputs)
        labels = torch.stack([ds.gt_label.reshape(-1)[0] for ds in data_samples])
        feats = self.pooled_tiles(self.backbone, self.neck, self.tile_head, batches)[0]
        return self.head.loss(feats, batches[0], labels.to(feats.device))
