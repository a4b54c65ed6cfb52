import pytest
import torch

from mcl_plugin.models.necks import InterpolatedPyramid
from mcl_plugin.models.utils import pyramid_outputs
from mcl_plugin.registry import MODELS


def _fpn(**kw):
    return MODELS.build(dict(type='mmdet.FPN', in_channels=[8, 16, 32, 64], out_channels=8,
                             num_outs=4, norm_cfg=dict(type='BN'), **kw))


def _inputs(size=32):
    return [torch.randn(2, c, size // 2**i, size // 2**i) for i, c in enumerate([8, 16, 32, 64])]


@pytest.mark.parametrize('needed', [[3], [2, 3], [1, 2, 3], [0, 1, 2, 3], [1, 3], [0]])
def test_fpn_levels_equal_the_full_fpn_and_skip_the_rest(needed):
    torch.manual_seed(0)
    fpn, x = _fpn(), _inputs()
    fpn.eval()  # BN with running statistics: the outputs do not depend on the batch seen
    full = fpn(x)
    calls = {i: 0 for i in range(4)}
    for i, conv in enumerate(fpn.fpn_convs):
        conv.register_forward_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))
    lateral = {i: 0 for i in range(4)}
    for i, conv in enumerate(fpn.lateral_convs):
        conv.register_forward_hook(lambda *_, i=i: lateral.__setitem__(i, lateral[i] + 1))
    out = pyramid_outputs(fpn, x, needed)
    assert len(out) == 4
    for i in range(4):
        if i in needed:
            assert torch.equal(out[i], full[i]), i  # same ops in the same order: bit-exact
        else:
            assert out[i] is None
    assert calls == {i: int(i in needed) for i in range(4)}
    assert lateral == {i: int(i >= min(needed)) for i in range(4)}


def test_fpn_with_extra_levels_and_other_necks_run_whole():
    fpn = MODELS.build(dict(type='mmdet.FPN', in_channels=[8, 16, 32, 64], out_channels=8,
                            num_outs=5))
    x = _inputs()
    out = pyramid_outputs(fpn, x, [3])
    assert len(out) == 5 and all(o is not None for o in out)
    pyr = InterpolatedPyramid(scale_factors=(1, 2, 4, 8))
    c4 = [torch.randn(2, 8, 4, 4)]
    out = pyramid_outputs(pyr, c4, [0, 1])
    assert torch.equal(out[1], pyr(c4)[1]) and out[2] is None and out[3] is None
    with pytest.raises(ValueError, match='has outputs 0..3'):
        pyramid_outputs(_fpn(), x, [4])


def test_start_level_fpn_is_indexed_by_its_outputs():
    fpn = MODELS.build(dict(type='mmdet.FPN', in_channels=[8, 16, 32, 64], out_channels=8,
                            num_outs=3, start_level=1))
    x = _inputs()
    full = fpn(x)
    out = pyramid_outputs(fpn, x, [2])
    assert out[:2] == [None, None] and torch.equal(out[2], full[2])


def test_rows_run_an_output_conv_on_some_rows_only():
    torch.manual_seed(0)
    fpn, x = _fpn(), _inputs()
    fpn.eval()
    x = [torch.cat([t, t.flip(0)]) for t in x]  # 4 rows
    full = fpn(x)
    seen = []
    fpn.fpn_convs[0].register_forward_hook(lambda m, args, out: seen.append(args[0].shape[0]))
    rows = torch.tensor([1, 3])
    out = pyramid_outputs(fpn, x, [0, 3], rows={0: rows})
    assert seen == [2]
    assert torch.equal(out[0][rows], full[0][rows]) and not out[0][[0, 2]].any()
    assert torch.equal(out[3], full[3])
    with pytest.raises(ValueError, match='rows needs the output indices'):
        pyramid_outputs(fpn, x, None, rows={0: rows})
