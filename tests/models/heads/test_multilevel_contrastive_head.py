import pytest
import torch
from torch import nn

from mcl_plugin.models.heads import (MultiLevelContrastiveHead, per_image_mean, target_levels)
from mcl_plugin.models.losses import info_nce

PREDICTOR = dict(type='NonLinearNeck', in_channels=8, hid_channels=16, out_channels=8,
                 with_avg_pool=False, norm_cfg=dict(type='BN1d'))


def _head(mode, S=3, T=0.5):
    head = MultiLevelContrastiveHead(PREDICTOR, num_levels=S, loss_mode=mode, temperature=T)
    head.predictor = nn.Identity()  # isolate the pairing logic: queries are the inputs
    head.predictor.forward = lambda x: x
    return head


def test_target_levels_follow_fig3():
    assert [target_levels('a', s, 4) for s in range(4)] == [[0], [0], [0], [0]]
    assert [target_levels('b', s, 4) for s in range(4)] == [[0], [1], [2], [3]]
    assert [target_levels('c', s, 4) for s in range(4)] == [[0], [0], [1], [2]]
    assert target_levels('d', 2, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match='loss_mode'):
        target_levels('e', 0, 4)


def test_per_image_mean_averages_repeated_tiles():
    x = torch.tensor([[1., 0.], [3., 2.], [5., 4.]])
    out = per_image_mean(x, torch.tensor([1, 0, 1]), 2)
    assert torch.equal(out, torch.tensor([[3., 2.], [3., 2.]]))


def _constructed_case(B=4, S=3, D=8):
    """Online tiles: one per image and level. Each target level has its own random per-image
    embeddings, so the loss value reveals which target level a mode paired with."""
    g = torch.Generator().manual_seed(0)
    src = torch.cat([torch.randperm(B, generator=g) for _ in range(S)])
    level = torch.arange(S).repeat_interleave(B)
    online = torch.randn(B * S, D, generator=g)
    tgt_src = torch.cat([torch.randperm(B, generator=g) for _ in range(S)])
    target = torch.randn(B * S, D, generator=g)
    return online, src, level, target, tgt_src, level.clone()


@pytest.mark.parametrize('mode', ['a', 'b', 'c', 'd'])
def test_each_mode_picks_the_pairs_of_fig3(mode):
    B, S, T = 4, 3, 0.5
    online, src, level, target, tsrc, tlevel = _constructed_case(B, S)
    out = _head(mode, S, T).loss(online, src, level, target, tsrc, tlevel, B)
    for s in range(S):
        q, labels = online[level == s], src[level == s]
        terms = []
        for t in target_levels(mode, s, S):
            keys = torch.zeros(B, online.shape[1])
            keys[tsrc[tlevel == t]] = target[tlevel == t]
            terms.append(info_nce(q, keys, labels, temperature=T))
        expected = torch.stack(terms).mean() * (1 / 2**(s + 1)) * 2 * T
        assert out[f'loss_level{s}'].item() == pytest.approx(expected.item(), rel=1e-5)
        assert -1 <= out[f'pos_sim_level{s}'] <= 1 and -1 <= out[f'neg_sim_level{s}'] <= 1


def test_modes_differ_and_perfect_alignment_gives_low_loss():
    B, S = 4, 3
    online, src, level, target, tsrc, tlevel = _constructed_case(B, S)
    a = _head('a').loss(online, src, level, target, tsrc, tlevel, B)
    b = _head('b').loss(online, src, level, target, tsrc, tlevel, B)
    assert a['loss_level0'] == pytest.approx(b['loss_level0'].item())  # level 0: same pairs
    assert a['loss_level2'].item() != pytest.approx(b['loss_level2'].item())
    eye = torch.eye(B) * 10
    perfect = _head('a', S=1, T=0.1).loss(eye, torch.arange(B), torch.zeros(B, dtype=torch.long),
                                          eye, torch.arange(B), torch.zeros(B, dtype=torch.long),
                                          B)
    assert perfect['loss_level0'].item() < 1e-3 and perfect['pos_sim_level0'] == pytest.approx(1)


def test_level_weight_validation():
    with pytest.raises(ValueError, match='level_weights has 2 entries'):
        MultiLevelContrastiveHead(PREDICTOR, num_levels=3, level_weights=[1, 1])
