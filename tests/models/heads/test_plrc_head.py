"""PLRCHead: the point contrast (same-region positives, intra- and inter-image negatives), the
affinity distillation (momentum teacher, online student), the image InfoNCE and the loss weights
with the distillation warm-up switch, each on constructed cases."""
import math

import pytest
import torch
import torch.nn.functional as F

from mcl_plugin.models.heads import PLRCHead, point_affinity_distillation


def _reference_contrast(q, k, img, reg, t):
    """Eq. 2 with explicit loops: mean over queries of the mean -log p over its positives."""
    q, k = F.normalize(q, dim=1), F.normalize(k, dim=1)
    total = 0.
    for i in range(q.shape[0]):
        logits = [float(q[i] @ k[j]) / t for j in range(k.shape[0])]
        log_z = math.log(sum(math.exp(v) for v in logits))
        pos = [j for j in range(k.shape[0]) if img[j] == img[i] and reg[j] == reg[i]]
        total += -sum(logits[j] - log_z for j in pos) / len(pos)
    return total / q.shape[0]


def test_point_contrast_same_region_positives_intra_and_inter_negatives():
    head = PLRCHead(point_temperature=0.2)
    img = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    reg = torch.tensor([3, 3, 7, 7, 3, 3, 5, 5])  # region 3 in both images: not a positive
    q, k = torch.randn(8, 4), torch.randn(8, 4)
    got = head.loss_contrast(q, k, img, reg)
    assert float(got) == pytest.approx(_reference_contrast(q, k, img, reg, 0.2), rel=1e-5)
    # all embeddings equal -> uniform softmax over the 8 keys -> log 8
    same = torch.ones(8, 4)
    assert float(head.loss_contrast(same, same, img, reg)) == pytest.approx(math.log(8))
    # perfectly separated points: probability 1/2 on each of the 2 positives -> log 2
    basis = torch.eye(4)[[0, 0, 1, 1, 2, 2, 3, 3]]
    sharp = PLRCHead(point_temperature=0.01)
    assert float(sharp.loss_contrast(basis, basis, img, reg)) == pytest.approx(math.log(2),
                                                                               abs=1e-4)
    # an intra-image and an inter-image negative both enter the denominator
    for j in (2, 4):  # same image other region / other image same region id
        k2 = basis.clone()
        k2[j] = basis[0]
        assert float(sharp.loss_contrast(basis, k2, img, reg)) > math.log(2) + 0.1


def test_affinity_distillation_teacher_is_momentum_student_is_online_query():
    """With the teacher query equal to the keys: PLRC(teacher='sampled_point')."""
    torch.manual_seed(0)
    q = torch.randn(6, 5, requires_grad=True)
    k = torch.randn(6, 5, requires_grad=True)
    got = point_affinity_distillation(q, k, k, 0.1, 0.07)
    qn, kn = F.normalize(q, dim=1), F.normalize(k, dim=1)
    teacher = (kn @ kn.t() / 0.07).softmax(1)  # A_{i'k'}(tau_t)
    student = (qn @ kn.t() / 0.1).log_softmax(1)  # A_{ik'}(tau_s)
    assert float(got) == pytest.approx(float(-(teacher * student).sum(1).mean()), rel=1e-5)
    got.backward()
    assert q.grad is not None and q.grad.abs().sum() > 0
    assert k.grad is None  # the teacher and the keys get no gradient
    # student == teacher distribution -> the loss is the teacher's entropy (its minimum)
    same = point_affinity_distillation(k.detach(), k.detach(), k.detach(), 0.07, 0.07)
    p = (F.normalize(k.detach(), dim=1) @ F.normalize(k.detach(), dim=1).t() / 0.07).softmax(1)
    assert float(same) == pytest.approx(float(-(p * p.log()).sum(1).mean()), rel=1e-5)
    assert float(point_affinity_distillation(q.detach(), k, k, 0.07, 0.07)) > float(same)


def test_affinity_distillation_separate_teacher_rows_and_visibility():
    """A teacher query that is not a key (PLRC(teacher='co_located')); rows without a
    teacher are left out of the mean, and none at all gives 0 with a graph."""
    torch.manual_seed(0)
    q = torch.randn(6, 5, requires_grad=True)
    t, k = torch.randn(6, 5), torch.randn(6, 5)
    valid = torch.tensor([True, False, True, True, False, True])
    got = point_affinity_distillation(q, t, k, 0.1, 0.07, valid)
    teacher = (F.normalize(t, dim=1) @ F.normalize(k, dim=1).t() / 0.07).softmax(1)
    student = (F.normalize(q, dim=1) @ F.normalize(k, dim=1).t() / 0.1).log_softmax(1)
    assert float(got) == pytest.approx(float(-(teacher * student).sum(1)[valid].mean()),
                                       rel=1e-5)
    none = point_affinity_distillation(q, t, k, 0.1, 0.07, torch.zeros(6, dtype=torch.bool))
    assert float(none) == 0.
    none.backward()
    assert q.grad is not None
    head = PLRCHead()
    args = (q, q, torch.randn(4, 5), q, k, torch.zeros(6, dtype=torch.long), torch.arange(6))
    out = head.loss(*args, teacher_query=t, teacher_valid=valid)
    assert float(out['affinity_ce']) == pytest.approx(float(got), rel=1e-5)


def test_moco_loss():
    head = PLRCHead(image_temperature=0.2)
    negatives = torch.eye(4)[[2, 3, 2, 3]]
    q = torch.eye(4)[:2]
    expected = -math.log(math.exp(5) / (math.exp(5) + 4))  # l_pos = 1/0.2, l_neg = 0
    assert float(head.loss_image(q, q, negatives)) == pytest.approx(expected, rel=1e-5)
    out = head.loss(q, q * 3, negatives, torch.zeros(0, 4), torch.zeros(0, 4),
                    torch.zeros(0).long(),
                    torch.zeros(0).long())
    assert float(out['image_nce']) == pytest.approx(expected, rel=1e-5)


def test_weights_and_warmup_switch():
    torch.manual_seed(0)
    head = PLRCHead(alpha=0.5, beta=0.7)
    img = torch.arange(4).repeat_interleave(4)
    reg = torch.tensor([0, 0, 1, 1] * 4)
    negatives = F.normalize(torch.randn(16, 8), dim=1)
    args = (torch.randn(4, 8), torch.randn(4, 8), negatives,
            torch.randn(16, 8, requires_grad=True),
            torch.randn(16, 8), img, reg)
    on = head.loss(*args, distill=True)
    off = head.loss(*args, distill=False)
    assert float(on['loss_point_contrast']) == pytest.approx(0.35 * float(on['point_nce']))
    assert float(on['loss_distill']) == pytest.approx(0.35 * float(on['affinity_ce']))
    assert float(on['loss_moco']) == pytest.approx(0.3 * float(on['image_nce']))
    assert float(on['distill_on']) == 1 and float(off['distill_on']) == 0
    assert float(off['loss_distill']) == 0 and not off['loss_distill'].requires_grad
    assert float(off['affinity_ce']) == pytest.approx(float(on['affinity_ce']))  # still logged
    assert float(off['loss_point_contrast']) == pytest.approx(float(on['loss_point_contrast']))
    # during the warm-up the point gradient comes from L_c only
    g_off = torch.autograd.grad(off['loss_point_contrast'] + off['loss_distill'], args[3])[0]
    g_c = torch.autograd.grad(on['loss_point_contrast'], args[3], retain_graph=True)[0]
    g_on = torch.autograd.grad(on['loss_point_contrast'] + on['loss_distill'], args[3])[0]
    assert torch.allclose(g_off, g_c) and not torch.allclose(g_on, g_c)
