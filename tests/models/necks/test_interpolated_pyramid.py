"""InterpolatedPyramid (C4 variant): bilinear resizes of one backbone output, no parameters."""
import torch

from mcl_plugin.models.necks import InterpolatedPyramid


def test_levels_are_bilinear_resizes_of_the_chosen_input():
    neck = InterpolatedPyramid(scale_factors=(1, 2, 0.5), in_index=0)
    assert list(neck.parameters()) == []
    x = torch.tensor([[0., 1.], [2., 3.]]).view(1, 1, 2, 2).requires_grad_()
    other = torch.zeros(1, 1, 3, 3)
    same, up, down = neck([x, other])
    assert same is x  # factor 1: the input itself
    # align_corners=False: output pixel centres at (i + 0.5) / 2 - 0.5 of the input grid
    row = [0., 0.25, 0.75, 1.]
    expected = torch.tensor([[v + 2 * r for v in row] for r in (0., 0.25, 0.75, 1.)])
    assert torch.allclose(up[0, 0], expected)
    assert down.shape == (1, 1, 1, 1) and down.item() == 1.5  # centre of the 2x2 map
    # every level passes gradient back to the feature it was resized from
    (up.sum() + down.sum()).backward()
    assert torch.allclose(x.grad, torch.full_like(x, 4 + 0.25))


def test_default_takes_the_last_output_and_doubles_three_times():
    feat = torch.rand(2, 4, 3, 5)
    outs = InterpolatedPyramid()([torch.rand(2, 1, 1, 1), feat])
    assert [tuple(o.shape) for o in outs] == [(2, 4, 3 * f, 5 * f) for f in (1, 2, 4, 8)]
    assert outs[0] is feat
