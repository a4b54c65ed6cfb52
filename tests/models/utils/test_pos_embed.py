import math

import pytest
import torch

from mcl_plugin.models.utils import (CartesianGridStemEmbedding, LearnableStemEmbedding,
                                     SinCosStemEmbedding, build_stem_embedding)


def test_spe_values_follow_the_formula():
    C, H, W = 64, 5, 7
    emb = SinCosStemEmbedding(C).embedding(H, W)
    d = C // 2
    assert emb.shape == (C, H, W)
    for (c, y, x) in [(0, 0, 3), (1, 2, 3), (6, 4, 6), (31, 1, 5)]:
        i = c // 2
        angle = x / 10000**(2 * i / d)
        expected = math.sin(angle) if c % 2 == 0 else math.cos(angle)
        assert emb[c, y, x].item() == pytest.approx(expected, abs=1e-6)
        # same formula on the y half, independent of x
        angle_y = y / 10000**(2 * i / d)
        expected_y = math.sin(angle_y) if c % 2 == 0 else math.cos(angle_y)
        assert emb[d + c, y, x].item() == pytest.approx(expected_y, abs=1e-6)


def test_spe_relative_offset_is_a_rotation():
    emb = SinCosStemEmbedding(16).embedding(1, 20)
    i, p, q = 1, 9, 4
    w = 1 / 10000**(2 * i / 8)
    d = w * (p - q)
    rot = torch.tensor([[math.cos(d), math.sin(d)], [-math.sin(d), math.cos(d)]])
    vp, vq = emb[2 * i:2 * i + 2, 0, p], emb[2 * i:2 * i + 2, 0, q]
    assert torch.allclose(vp, rot @ vq, atol=1e-6)


def test_csg_is_a_repeated_minus1_to_1_grid():
    emb = CartesianGridStemEmbedding(8).embedding(3, 5)
    assert emb.shape == (8, 3, 5)
    assert torch.allclose(emb[0, 0], torch.linspace(-1, 1, 5))
    assert torch.allclose(emb[1, :, 0], torch.linspace(-1, 1, 3))
    assert torch.equal(emb[0], emb[6]) and torch.equal(emb[1], emb[7])


def test_lpe_looks_up_learnable_tables_and_gets_gradients():
    lpe = LearnableStemEmbedding(8, size=6)
    emb = lpe.embedding(6, 6)
    assert torch.equal(emb[:4, 2, 5], lpe.x_embed[5]) and torch.equal(emb[4:, 5, 2], lpe.y_embed[5])
    lpe(torch.zeros(1, 8, 6, 6)).sum().backward()
    assert lpe.x_embed.grad is not None and lpe.x_embed.grad.abs().sum() > 0
    assert lpe.embedding(3, 12).shape == (8, 3, 12)  # resized tables for other map sizes


def test_builder_and_errors():
    assert build_stem_embedding(None, 64) is None
    assert build_stem_embedding(dict(type='none'), 64) is None
    assert isinstance(build_stem_embedding(dict(type='SPE'), 64), SinCosStemEmbedding)
    with pytest.raises(ValueError, match='divisible by 4'):
        SinCosStemEmbedding(6)
