"""InfoNCE with explicit positives, shared by MCL, DetCo and PLRC."""
from typing import Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor

from mcl_plugin.registry import MODELS


def info_nce(query: Tensor,
             keys: Tensor,
             labels: Optional[Tensor] = None,
             pos_mask: Optional[Tensor] = None,
             temperature: float = 1.0,
             normalize: bool = True) -> Tensor:
    """Mean InfoNCE of ``query`` against ``keys``.

    ``L_i = -log( sum_{p in P(i)} exp(q_i.k_p / T) / sum_j exp(q_i.k_j / T) ) / |P(i)|``-style
    multi-positive form when ``pos_mask`` is given (each positive is its own term, averaged per
    query), the usual single-positive cross entropy when ``labels`` is given.

    Args:
        query (Tensor): ``(N, D)``.
        keys (Tensor): ``(K, D)``, positives and negatives.
        labels (Tensor, optional): ``(N,)`` index of each query's positive in ``keys``.
        pos_mask (Tensor, optional): ``(N, K)`` bool, several positives per query.
        temperature (float): Softmax temperature ``T``.
        normalize (bool): L2-normalise ``query`` and ``keys`` first.
    """
    if (labels is None) == (pos_mask is None):
        raise ValueError('info_nce needs exactly one of labels / pos_mask')
    if normalize:
        query, keys = F.normalize(query, dim=1), F.normalize(keys, dim=1)
    logits = query @ keys.t() / temperature
    if labels is not None:
        return F.cross_entropy(logits, labels)
    pos_mask = pos_mask.to(logits.dtype)
    if (pos_mask.sum(1) == 0).any():
        raise ValueError('info_nce: every query needs at least one positive in pos_mask')
    log_prob = logits.log_softmax(dim=1)
    return -((log_prob * pos_mask).sum(1) / pos_mask.sum(1)).mean()


@MODELS.register_module()
class InfoNCELoss(BaseModule):
    """Module form of :func:`info_nce`.

    Args:
        temperature (float): Softmax temperature. Defaults to 0.2.
        loss_weight (float): Multiplier of the loss. Defaults to 1.0.
        scale_by_temperature (bool): Multiply by ``2 * T`` as MoCo v3 does, which keeps the
            gradient scale independent of ``T``. Defaults to False.
    """

    def __init__(self,
                 temperature: float = 0.2,
                 loss_weight: float = 1.0,
                 scale_by_temperature: bool = False) -> None:
        super().__init__()
        self.temperature = temperature
        self.loss_weight = loss_weight * (2 * temperature if scale_by_temperature else 1.0)

    def forward(self, query: Tensor, keys: Tensor, labels: Optional[Tensor] = None,
                pos_mask: Optional[Tensor] = None) -> Tensor:
        return self.loss_weight * info_nce(query, keys, labels, pos_mask, self.temperature)


def pair_similarity(query: Tensor, keys: Tensor, labels: Tensor):
    """Mean cosine similarity of each query to its positive and to its negatives (for logs)."""
    with torch.no_grad():
        sim = F.normalize(query, dim=1) @ F.normalize(keys, dim=1).t()
        pos = sim.gather(1, labels[:, None])
        neg_sum = sim.sum(1, keepdim=True) - pos
        neg = neg_sum / max(sim.shape[1] - 1, 1)
        return pos.mean(), neg.mean()
