"""InfoNCE variants shared by MCL, DetCo and PLRC (the one place they are defined)."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def info_nce(query: Tensor,
             keys: Tensor,
             labels: Optional[Tensor] = None,
             pos_mask: Optional[Tensor] = None,
             temperature: float = 1.0,
             normalize: bool = True) -> Tensor:
    """Mean InfoNCE of every query against a shared set of keys.

    Single positive (``labels``, MCL): the cross entropy of ``softmax_j(q_i . k_j / T)`` at
    ``labels[i]``. Multi-positive (``pos_mask``, PLRC's point contrast): each positive is its
    own term, averaged per query, ``L_i = -1/|P(i)| sum_{p in P(i)} log softmax_j(q_i . k_j /
    T)_p``. Queries are averaged.

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


def moco_info_nce(query: Tensor, pos_key: Tensor, negatives: Tensor,
                  temperature: float) -> Tensor:
    """MoCo's InfoNCE: one positive key per query and a shared set of negatives (a queue).

    ``L_i = -log( exp(q_i.k_i / T) / (exp(q_i.k_i / T) + sum_j exp(q_i.n_j / T)) )``, averaged.
    ``query`` and ``pos_key`` are L2-normalised here, ``negatives`` are used as stored (the
    queue holds normalised keys). The other queries' positives are *not* negatives (unlike
    :func:`info_nce`): the denominator is MoCo's (DetCo Eq. 2, PLRC Eq. 1) ``sum_{i=0..K}``
    over the positive and the queue.

    Args:
        query (Tensor): ``(N, D)``.
        pos_key (Tensor): ``(N, D)``, row ``i`` is the positive of query ``i``.
        negatives (Tensor): ``(K, D)``.
        temperature (float): ``T``.
    """
    q = F.normalize(query, dim=1)
    k = F.normalize(pos_key, dim=1)
    l_pos = (q * k).sum(1, keepdim=True)
    l_neg = q @ negatives.t().to(q.dtype)
    logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels)


def pair_similarity(query: Tensor, keys: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
    """Mean cosine similarity of each query to its positive and to its negatives (for logs)."""
    with torch.no_grad():
        sim = F.normalize(query, dim=1) @ F.normalize(keys, dim=1).t()
        pos = sim.gather(1, labels[:, None])
        neg_sum = sim.sum(1, keepdim=True) - pos
        neg = neg_sum / max(sim.shape[1] - 1, 1)
        return pos.mean(), neg.mean()
