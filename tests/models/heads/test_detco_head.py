"""DetCoHead: each loss term (g<->g, l<->l, g<->l per stage) on constructed embeddings against an
explicit InfoNCE, the stage weights, the term subsets and their errors."""
import math

import pytest
import torch
import torch.nn.functional as F

from mcl_plugin.models.heads import DetCoHead

T = 0.2


def nce_reference(q, k, negs, t):
    """-log(exp(q.k/t) / (exp(q.k/t) + sum_j exp(q.n_j/t))) with explicit loops."""
    total = 0.
    for i in range(q.shape[0]):
        qi = q[i] / q[i].norm()
        ki = k[i] / k[i].norm()
        pos = math.exp(float(qi @ ki) / t)
        neg = sum(math.exp(float(qi @ n) / t) for n in negs)
        total += -math.log(pos / (pos + neg))
    return total / q.shape[0]


def _embeddings(n=3, d=6, k=7, stages=4, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g)

    return dict(q_global=[r(n, d) for _ in range(stages)],
                k_global=[r(n, d) for _ in range(stages)],
                neg_global=[F.normalize(r(k, d), dim=1) for _ in range(stages)],
                q_local=[r(n, d) for _ in range(stages)],
                k_local=[r(n, d) for _ in range(stages)],
                neg_local=[F.normalize(r(k, d), dim=1) for _ in range(stages)])


def test_every_term_pairs_the_right_query_key_and_queue():
    e = _embeddings()
    head = DetCoHead(temperature=T)
    losses = head.loss(**e)
    assert len(losses) == 12
    weights = (0.1, 0.4, 0.7, 1.0)
    for i, w in enumerate(weights):
        name = f'res{i + 2}'
        gg = nce_reference(e['q_global'][i], e['k_global'][i], e['neg_global'][i], T)
        ll = nce_reference(e['q_local'][i], e['k_local'][i], e['neg_local'][i], T)
        # g<->l: local query, global key, negatives from the GLOBAL queue (Eq. 4)
        gl = nce_reference(e['q_local'][i], e['k_global'][i], e['neg_global'][i], T)
        gl_wrong_queue = nce_reference(e['q_local'][i], e['k_global'][i], e['neg_local'][i], T)
        assert losses[f'loss_gg_{name}'].item() == pytest.approx(w * gg, rel=1e-4)
        assert losses[f'loss_ll_{name}'].item() == pytest.approx(w * ll, rel=1e-4)
        assert losses[f'loss_gl_{name}'].item() == pytest.approx(w * gl, rel=1e-4)
        assert abs(gl - gl_wrong_queue) > 1e-3  # the case distinguishes the two queues
    # The total mmengine optimises is Eq. 1.
    total = sum(v for v in losses.values())
    assert total.item() == pytest.approx(sum(
        w * (nce_reference(e['q_global'][i], e['k_global'][i], e['neg_global'][i], T) +
             nce_reference(e['q_local'][i], e['k_local'][i], e['neg_local'][i], T) +
             nce_reference(e['q_local'][i], e['k_global'][i], e['neg_global'][i], T))
        for i, w in enumerate(weights)),
                                         rel=1e-4)


def test_term_subset_weights_and_errors():
    e = _embeddings()
    hic = DetCoHead(loss_terms=('gg', ), loss_weights=(0., 0., 0., 1.))
    assert not hic.uses_local
    losses = hic.loss(e['q_global'], e['k_global'], e['neg_global'])
    assert sorted(losses) == [f'loss_gg_res{i}' for i in range(2, 6)]
    assert losses['loss_gg_res2'].item() == 0.
    with pytest.raises(ValueError, match='local'):
        DetCoHead().loss(e['q_global'], e['k_global'], e['neg_global'])
    with pytest.raises(ValueError, match='subset'):
        DetCoHead(loss_terms=('lg', ))
    with pytest.raises(ValueError, match='loss_weights'):
        DetCoHead(loss_weights=(1., 1.)).loss(**e)
