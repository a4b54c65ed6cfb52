"""PEResNet / PESwinTransformer: the mmdet backbone's state dict plus ``stem_pe.*`` (learnable
variant only), and the embedding added to the stride-4 stem feature, nothing else."""
import pytest
import torch
from mmdet.models.backbones import ResNet, SwinTransformer

from mcl_plugin.models.backbones import PEResNet, PESwinTransformer
from mcl_plugin.models.utils import build_stem_embedding

TINY_SWIN = dict(pretrain_img_size=32, embed_dims=16, depths=(1, 1), num_heads=(1, 2),
                 window_size=2, strides=(4, 2), out_indices=(0, 1))


@pytest.mark.parametrize('kind', ['none', 'spe', 'csg', 'lpe'])
def test_pe_resnet_keys_and_forward(kind):
    plain = ResNet(depth=18)
    pe = PEResNet(depth=18, stem_pos_embed=dict(type=kind))
    pe.load_state_dict(plain.state_dict(), strict=False)
    extra = set(pe.state_dict()) - set(plain.state_dict())
    assert extra == ({'stem_pe.x_embed', 'stem_pe.y_embed'} if kind == 'lpe' else set())
    x = torch.rand(2, 3, 64, 64)
    plain.eval()
    pe.eval()
    same = all(torch.allclose(a, b) for a, b in zip(plain(x), pe(x)))
    assert same == (kind == 'none')


def test_pe_resnet_adds_the_embedding_after_the_max_pool():
    pe = PEResNet(depth=18, base_channels=8, stem_channels=8, out_indices=(0, 3),
                  stem_pos_embed=dict(type='csg'))
    pe.eval()  # mmdet's ResNet.train() returns None: no chaining
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        stem = pe.maxpool(pe.relu(pe.norm1(pe.conv1(x))))  # (2, 8, 8, 8): stride 4
        assert stem.shape == (2, 8, 8, 8)
        feat = stem + build_stem_embedding(dict(type='csg'), 8).embedding(8, 8)[None]
        expected = []
        for name in pe.res_layers:
            feat = getattr(pe, name)(feat)
            expected.append(feat)
        out = pe(x)
    assert len(out) == 2
    assert torch.allclose(out[0], expected[0], atol=1e-6)
    assert torch.allclose(out[1], expected[3], atol=1e-6)


@pytest.mark.parametrize('kind', ['none', 'spe', 'lpe'])
def test_pe_swin_adds_the_embedding_to_the_patch_embedding(kind):
    torch.manual_seed(0)
    plain = SwinTransformer(**TINY_SWIN)
    pe = PESwinTransformer(**TINY_SWIN, stem_pos_embed=dict(type=kind))
    plain.eval()  # mmdet's SwinTransformer.train() returns None: no chaining
    pe.eval()
    missing, unexpected = pe.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected
    assert set(missing) == ({'stem_pe.x_embed', 'stem_pe.y_embed'} if kind == 'lpe' else set())
    if pe.stem_pe is not None:
        with torch.no_grad():  # non-zero learnable tables, so the check means something
            for p in pe.stem_pe.parameters():
                p.normal_()

    def add_embedding(module, args, output):  # the same embedding on the plain backbone
        tokens, hw = output
        if pe.stem_pe is None:
            return output
        grid = tokens.transpose(1, 2).reshape(tokens.shape[0], -1, *hw)
        return pe.stem_pe(grid).flatten(2).transpose(1, 2), hw

    handle = plain.patch_embed.register_forward_hook(add_embedding)
    x = torch.rand(2, 3, 32, 32)
    out, expected = pe(x), plain(x)
    handle.remove()
    assert [o.shape for o in out] == [(2, 16, 8, 8), (2, 32, 4, 4)]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(out, expected))
    differs = not all(torch.allclose(a, b, atol=1e-5) for a, b in zip(out, plain(x)))
    assert differs == (kind != 'none')
    if kind == 'lpe':  # the learnable tables receive gradient through the backbone
        sum(o.sum() for o in out).backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0
                   for p in pe.stem_pe.parameters())
