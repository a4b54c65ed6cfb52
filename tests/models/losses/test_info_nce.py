"""InfoNCE variants (single positive, multi-positive, MoCo queue form) on hand-computed cases."""
import math

import pytest
import torch

from mcl_plugin.models.losses import info_nce, moco_info_nce, pair_similarity

T = 0.2


def test_single_positive_value_on_a_constructed_case():
    q = torch.tensor([[1., 0.], [0., 1.]])
    k = torch.tensor([[1., 0.], [0., 1.], [-1., 0.]])
    labels = torch.tensor([0, 1])
    # T = 0.5; row 0 logits: 2, 0, -2 ; row 1: 0, 2, 0
    l0 = -math.log(math.exp(2) / (math.exp(2) + 1 + math.exp(-2)))
    l1 = -math.log(math.exp(2) / (1 + math.exp(2) + 1))
    assert info_nce(q, k, labels, temperature=0.5).item() == pytest.approx((l0 + l1) / 2,
                                                                            rel=1e-6)


def test_multi_positive_against_a_hand_computed_number():
    """Two queries, four keys at angles 0, 90, 180 and 0 degrees (keys 0 and 3 coincide)."""
    q = torch.tensor([[2., 0.], [0., 1.]])
    k = torch.tensor([[1., 0.], [0., 3.], [-1., 0.], [5., 0.]])
    mask = torch.tensor([[True, False, False, True], [False, True, True, False]])
    # T = 0.5: row 0 logits 2, 0, -2, 2; row 1 logits 0, 2, 0, 0
    z0 = 2 * math.exp(2) + 1 + math.exp(-2)
    z1 = math.exp(2) + 3
    l0 = -(2 - math.log(z0) + 2 - math.log(z0)) / 2  # positives: keys 0 and 3
    l1 = -(2 - math.log(z1) + 0 - math.log(z1)) / 2  # positives: keys 1 and 2
    got = info_nce(q, k, pos_mask=mask, temperature=0.5)
    assert got.item() == pytest.approx((l0 + l1) / 2, rel=1e-6)
    assert got.item() == pytest.approx(1.05396, abs=1e-5)  # the number itself


def test_normalisation_and_argument_checks():
    q = torch.tensor([[3., 0.]])
    k = torch.tensor([[2., 0.], [0., 5.], [1., 0.]])
    mask = torch.tensor([[True, False, True]])
    lp = torch.log_softmax(torch.tensor([1., 0., 1.]), 0)
    expected = -(lp[0] + lp[2]) / 2
    assert info_nce(q, k, pos_mask=mask).item() == pytest.approx(expected.item(), rel=1e-6)
    # a one-hot mask is the single-positive loss
    one = torch.tensor([[False, False, True]])
    assert info_nce(q, k, pos_mask=one).item() == pytest.approx(
        info_nce(q, k, torch.tensor([2])).item(), rel=1e-6)
    with pytest.raises(ValueError, match='exactly one of'):
        info_nce(q, k)
    with pytest.raises(ValueError, match='at least one positive'):
        info_nce(q, k, pos_mask=torch.zeros(1, 3, dtype=torch.bool))


def test_moco_form_analytic_case():
    # q = k = e0, K negatives all e1 (orthogonal): L = log(1 + K * exp(-1/T)).
    K = 5
    q = torch.tensor([[1., 0., 0.]])
    negs = torch.tensor([[0., 1., 0.]]).repeat(K, 1)
    assert moco_info_nce(q, q, negs, T).item() == pytest.approx(math.log(1 + K * math.exp(-1 / T)),
                                                                rel=1e-5)
    # an anti-aligned positive is the worst case: log(1 + K * exp(1/T))
    assert moco_info_nce(q, -q, negs, T).item() == pytest.approx(math.log(1 + K * math.exp(1 / T)),
                                                                 rel=1e-5)
    # The other queries' positives are not negatives: with a second query e2 (positive e2),
    # e0 would add exp(0) to e2's denominator (and e2 to e0's) if in-batch keys were negatives.
    q2 = torch.tensor([[1., 0., 0.], [0., 0., 1.]])
    assert moco_info_nce(q2, q2, negs,
                         T).item() == pytest.approx(math.log(1 + K * math.exp(-1 / T)), rel=1e-5)
    # queries and positives are normalised, the queue is used as stored
    assert moco_info_nce(3 * q, 2 * q, negs, T).item() == pytest.approx(
        moco_info_nce(q, q, negs, T).item(), rel=1e-6)


def test_pair_similarity():
    q = torch.tensor([[1., 0.]])
    k = torch.tensor([[1., 0.], [0., 1.], [-1., 0.]])
    pos, neg = pair_similarity(q, k, torch.tensor([0]))
    assert pos.item() == pytest.approx(1.0) and neg.item() == pytest.approx(-0.5)
