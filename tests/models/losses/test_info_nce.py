import math

import pytest
import torch

from mcl_plugin.models.losses import InfoNCELoss, info_nce, pair_similarity


def test_single_positive_value_on_a_constructed_case():
    q = torch.tensor([[1., 0.], [0., 1.]])
    k = torch.tensor([[1., 0.], [0., 1.], [-1., 0.]])
    labels = torch.tensor([0, 1])
    T = 0.5
    # row 0 logits: 2, 0, -2 ; row 1: 0, 2, 0
    l0 = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2)))
    l1 = -math.log(math.exp(2) / (1 + math.exp(2) + 1))
    assert info_nce(q, k, labels, temperature=T).item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    scaled = InfoNCELoss(temperature=T, scale_by_temperature=True)(q, k, labels)
    assert scaled.item() == pytest.approx((l0 + l1) / 2 * 2 * T, rel=1e-6)


def test_normalisation_and_multi_positive():
    q = torch.tensor([[3., 0.]])
    k = torch.tensor([[2., 0.], [0., 5.], [1., 0.]])
    mask = torch.tensor([[True, False, True]])
    lp = torch.log_softmax(torch.tensor([1., 0., 1.]), 0)
    expected = -(lp[0] + lp[2]) / 2
    assert info_nce(q, k, pos_mask=mask).item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match='exactly one of'):
        info_nce(q, k)
    with pytest.raises(ValueError, match='at least one positive'):
        info_nce(q, k, pos_mask=torch.zeros(1, 3, dtype=torch.bool))


def test_pair_similarity():
    q = torch.tensor([[1., 0.]])
    k = torch.tensor([[1., 0.], [0., 1.], [-1., 0.]])
    pos, neg = pair_similarity(q, k, torch.tensor([0]))
    assert pos.item() == pytest.approx(1.0) and neg.item() == pytest.approx(-0.5)
