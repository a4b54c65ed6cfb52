from types import SimpleNamespace

import pytest
import torch
from torch import nn

from mcl_plugin.models.heads import (MultiLevelContrastiveHead, per_image_mean, target_levels)
from mcl_plugin.models.losses import info_nce
from mcl_plugin.models.utils import MontageAssembler

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


def _tiles(src, level, num_images):
    """The tile metadata the head reads from a ``MontageBatch``."""
    return SimpleNamespace(src=src, level=level, num_images=num_images)


def _constructed_case(B=4, S=3, D=8):
    """Online tiles: one per image and level. Each target level has its own random per-image
    embeddings, so the loss value reveals which target level a mode paired with."""
    g = torch.Generator().manual_seed(0)
    src = torch.cat([torch.randperm(B, generator=g) for _ in range(S)])
    level = torch.arange(S).repeat_interleave(B)
    online = torch.randn(B * S, D, generator=g)
    tgt_src = torch.cat([torch.randperm(B, generator=g) for _ in range(S)])
    target = torch.randn(B * S, D, generator=g)
    return online, target, _tiles(src, level, B), _tiles(tgt_src, level.clone(), B)


@pytest.mark.parametrize('mode', ['a', 'b', 'c', 'd'])
def test_each_mode_picks_the_pairs_of_fig3(mode):
    B, S, T = 4, 3, 0.5
    online, target, q_tiles, k_tiles = _constructed_case(B, S)
    out = _head(mode, S, T).directional_loss(online, target, q_tiles, k_tiles)
    src, level, tsrc, tlevel = q_tiles.src, q_tiles.level, k_tiles.src, k_tiles.level
    for s in range(S):
        q, labels = online[level == s], src[level == s]
        terms = []
        for t in target_levels(mode, s, S):
            keys = torch.zeros(B, online.shape[1])
            keys[tsrc[tlevel == t]] = target[tlevel == t]
            terms.append(info_nce(q, keys, labels, temperature=T))
        expected = torch.stack(terms).mean() * (1 / 2**(s + 1)) * 2 * T
        assert out.loss[s].item() == pytest.approx(expected.item(), rel=1e-5)
        assert -1 <= out.pos_sim[s] <= 1 and -1 <= out.neg_sim[s] <= 1


def test_modes_differ_and_perfect_alignment_gives_low_loss():
    B, S = 4, 3
    case = _constructed_case(B, S)
    a = _head('a').directional_loss(*case)
    b = _head('b').directional_loss(*case)
    assert a.loss[0] == pytest.approx(b.loss[0].item())  # level 0: same pairs
    assert a.loss[2].item() != pytest.approx(b.loss[2].item())
    eye = torch.eye(B) * 10
    tiles = _tiles(torch.arange(B), torch.zeros(B, dtype=torch.long), B)
    perfect = _head('a', S=1, T=0.1).directional_loss(eye, eye, tiles, tiles)
    assert perfect.loss[0].item() < 1e-3 and perfect.pos_sim[0] == pytest.approx(1)


@pytest.mark.parametrize('mode', ['a', 'd'])
def test_loss_sums_both_directions_and_averages_their_similarities(mode):
    """``loss`` takes the two branches' montage batches whole: online tiles of branch 0 against
    branch 1's targets and back; losses add up, similarities are averaged."""
    B, S, D = 4, 2, 8
    g = torch.Generator().manual_seed(1)
    batches = [MontageAssembler()([torch.rand(B, 3, 8, 8) for _ in range(S)], g, start=start)
               for start in (0, 5)]
    online = [torch.randn(b.src.numel(), D, generator=g) for b in batches]
    target = [torch.randn(b.src.numel(), D, generator=g) for b in batches]
    head = _head(mode, S)
    out = head.loss(online, target, batches)
    ab = head.directional_loss(online[0], target[1], batches[0], batches[1])
    ba = head.directional_loss(online[1], target[0], batches[1], batches[0])
    assert list(out) == [f'{k}_level{s}' for s in range(S) for k in ('loss', 'pos_sim', 'neg_sim')]
    for s in range(S):
        assert out[f'loss_level{s}'] == ab.loss[s] + ba.loss[s]
        assert out[f'pos_sim_level{s}'] == (ab.pos_sim[s] + ba.pos_sim[s]) / 2
        assert out[f'neg_sim_level{s}'] == (ab.neg_sim[s] + ba.neg_sim[s]) / 2
    with pytest.raises(ValueError, match='needs two branches'):
        head.loss(online[:1], target[:1], batches[:1])


def test_level_weight_validation():
    with pytest.raises(ValueError, match='level_weights has 2 entries'):
        MultiLevelContrastiveHead(PREDICTOR, num_levels=3, level_weights=[1, 1])
