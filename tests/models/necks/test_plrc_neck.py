"""PLRCDenseNeck: MoCo v2's MLP as 1x1 convolutions, i.e. the same MLP at every location."""
import torch

from mcl_plugin.models.necks import PLRCDenseNeck


def test_every_location_gets_the_mlp_of_its_feature_vector():
    torch.manual_seed(0)
    neck = PLRCDenseNeck(in_channels=3, hid_channels=5, out_channels=2)
    x = torch.randn(2, 3, 4, 6, requires_grad=True)
    out, = neck(x)
    assert out.shape == (2, 2, 4, 6)
    w1, b1 = neck.mlp[0].weight[:, :, 0, 0], neck.mlp[0].bias
    w2, b2 = neck.mlp[2].weight[:, :, 0, 0], neck.mlp[2].bias
    for b, i, j in [(0, 0, 0), (1, 3, 5), (0, 2, 1)]:
        v = x[b, :, i, j]
        expected = w2 @ torch.relu(w1 @ v + b1) + b2
        assert torch.allclose(out[b, :, i, j], expected, atol=1e-6)
    # a sequence of backbone outputs: the last one is projected
    last, = neck((torch.randn(2, 7, 1, 1), x))
    assert torch.equal(last, out)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in neck.parameters())
