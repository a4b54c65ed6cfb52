"""The weighted k-nearest-neighbour rule of InstDisc (Wu et al. 2018): cosine similarity, the
``k`` most similar training samples vote with weight ``exp(similarity / T)``."""
from typing import Tuple

import torch
from torch import nn


@torch.no_grad()
def knn_predict(train_feats: torch.Tensor,
                train_labels: torch.Tensor,
                test_feats: torch.Tensor,
                num_classes: int,
                k: int = 20,
                temperature: float = 0.07,
                chunk: int = 1024) -> Tuple[torch.Tensor, torch.Tensor]:
    """Weighted k-NN classification with cosine similarity (InstDisc's rule).

    Every test sample takes the ``k`` training samples with the highest cosine similarity
    ``s``; each votes for its class with weight ``exp(s / temperature)``; the class with the
    largest total wins (ties: the lower class index).

    Args:
        train_feats (Tensor): ``(N, C)`` training features.
        train_labels (Tensor): ``(N,)`` class indices in ``[0, num_classes)``.
        test_feats (Tensor): ``(M, C)`` features to classify.
        num_classes (int): Number of classes.
        k (int): Neighbours (clamped to ``N``).
        temperature (float): Vote temperature.
        chunk (int): Test samples per similarity block (memory bound).

    Returns:
        tuple[Tensor, Tensor]: ``(M,)`` predicted classes and ``(M, num_classes)`` votes.
    """
    if len(train_feats) == 0:
        raise ValueError('k-NN needs at least one training sample')
    if int(train_labels.min()) < 0 or int(train_labels.max()) >= num_classes:
        raise ValueError(f'train labels must lie in [0, {num_classes})')
    k = min(k, len(train_feats))
    train = nn.functional.normalize(train_feats.double(), dim=1)
    test = nn.functional.normalize(test_feats.double(), dim=1)
    preds, votes = [], []
    for start in range(0, len(test), chunk):
        sim = test[start:start + chunk] @ train.T
        top_sim, top_idx = sim.topk(k, dim=1)
        weights = (top_sim / temperature).exp()
        vote = torch.zeros(len(sim), num_classes, dtype=torch.float64)
        vote.scatter_add_(1, train_labels[top_idx], weights)
        preds.append(vote.argmax(dim=1))
        votes.append(vote)
    return torch.cat(preds), torch.cat(votes)


def knn_top1(train_feats: torch.Tensor,
             train_labels: torch.Tensor,
             test_feats: torch.Tensor,
             test_labels: torch.Tensor,
             num_classes: int,
             k: int = 20,
             temperature: float = 0.07) -> float:
    """Top-1 accuracy (fraction in ``[0, 1]``) of :func:`knn_predict` on labelled test data."""
    pred, _ = knn_predict(train_feats, train_labels, test_feats, num_classes, k, temperature)
    return float((pred == test_labels).double().mean())
