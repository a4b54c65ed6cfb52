"""DetCoNeck: global heads on pooled stage maps, local heads on the pooled patches of an image
concatenated in patch order, and the sample-major patch stacking."""
import pytest
import torch

from mcl_plugin.models.necks import DetCoNeck
from mcl_plugin.models.necks.detco_neck import stack_patches


def test_neck_concatenates_pooled_patches_in_order():
    torch.manual_seed(0)
    neck = DetCoNeck(in_channels=(2, 3), hid_channels=4, out_channels=5, num_patches=9)
    n = 2
    feats = [torch.randn(n * 9, 2, 4, 4), torch.randn(n * 9, 3, 2, 2)]
    out = neck.forward_local(feats)
    assert [o.shape for o in out] == [(n, 5), (n, 5)]
    # image 1's embedding = MLP of its 9 pooled patches concatenated in patch order
    pooled = feats[1].mean((2, 3)).reshape(n, 9 * 3)
    assert torch.allclose(out[1][1], neck.local_heads[1].mlp(pooled[1]), atol=1e-6)
    assert torch.allclose(out[1][1],
                          neck.local_heads[1].mlp(
                              torch.cat([feats[1][9 + p].mean((1, 2)) for p in range(9)])),
                          atol=1e-6)
    with pytest.raises(ValueError, match='channels'):
        neck.forward_global([torch.randn(2, 3, 4, 4), torch.randn(2, 3, 2, 2)])


def test_global_heads_pool_each_stage_and_all_heads_get_gradient():
    torch.manual_seed(0)
    neck = DetCoNeck(in_channels=(2, 3), hid_channels=4, out_channels=5, num_patches=4)
    feats = [torch.randn(2, 2, 4, 4), torch.randn(2, 3, 2, 2)]
    patches = [torch.randn(8, 2, 2, 2), torch.randn(8, 3, 1, 1)]
    glob, local = neck(feats, patches)
    for i, x in enumerate(feats):  # MoCo v2 MLP (Linear -> ReLU -> Linear) on the mean
        mlp = neck.global_heads[i].mlp
        expected = mlp[2](torch.relu(mlp[0](x.mean((2, 3)))))
        assert torch.allclose(glob[i], expected, atol=1e-6)
    assert [g.shape for g in glob] == [(2, 5), (2, 5)] and len(local) == 2
    assert neck(feats)[1] is None
    sum(o.sum() for o in glob + local).backward()
    for name, p in neck.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match='not a multiple of num_patches=4'):
        neck.forward_local([torch.randn(6, 2, 2, 2), torch.randn(6, 3, 1, 1)])
    hic = DetCoNeck(in_channels=(2, 3), hid_channels=4, out_channels=5, with_local=False)
    assert hic.local_heads is None and hic.num_stages == 2
    with pytest.raises(RuntimeError, match='no local heads'):
        hic.forward_local(patches)


def test_stack_patches_is_sample_major():
    n, p = 2, 3
    patches = [torch.full((n, 1, 1, 1), float(10 * k)) + torch.arange(n).view(n, 1, 1, 1)
               for k in range(p)]
    out = stack_patches(patches)
    # row n * P + p is patch p of image n
    assert out.flatten().tolist() == [0., 10., 20., 1., 11., 21.]


def test_hidden_widths_follow_the_reference_with_in():
    """``'in'``: hidden width = input width (the public code: ``C -> C`` global, ``9C -> 9C``
    local); an int fixes it; the local heads follow ``hid_channels`` unless set."""
    ref = DetCoNeck(in_channels=(2, 3), hid_channels='in', local_hid_channels='in',
                    out_channels=5)
    assert [h.mlp[0].weight.shape for h in ref.global_heads] == [(2, 2), (3, 3)]
    assert [h.mlp[0].weight.shape for h in ref.local_heads] == [(18, 18), (27, 27)]
    assert [h.mlp[2].weight.shape for h in ref.local_heads] == [(5, 18), (5, 27)]
    mixed = DetCoNeck(in_channels=(2, 3), hid_channels=4, local_hid_channels='in')
    assert [h.mlp[0].weight.shape[0] for h in mixed.global_heads] == [4, 4]
    assert [h.mlp[0].weight.shape[0] for h in mixed.local_heads] == [18, 27]
    same = DetCoNeck(in_channels=(2, 3), hid_channels=4)
    assert [h.mlp[0].weight.shape[0] for h in same.local_heads] == [4, 4]
    with pytest.raises(ValueError, match="positive int or 'in'"):
        DetCoNeck(in_channels=(2, 3), hid_channels='out')
