import pytest
import torch
import torch.nn.functional as F
from mmdet.models.roi_heads.roi_extractors import BaseRoIExtractor

from mcl_plugin.models.utils import (MontageAssembler, MultiLevelRoIPooler, TilePooler,
                                     joint_montages, montage_level_to_feature)

STRIDES = (4, 8, 16, 32)


def _feats_from_montages(batch, strides):
    """Feature maps whose cells are the average-pooled montage pixels (known content)."""
    images = torch.cat(batch.montages)
    return [F.avg_pool2d(images, s) for s in strides]


def _ramp_feats(num_rows, size, strides=STRIDES):
    """Channel 0: the x of each cell centre in input pixels, channel 1: its y, channel 2: the
    row of the feature batch (which montage a value comes from)."""
    feats = []
    for s in strides:
        n = size // s
        centre = (torch.arange(n, dtype=torch.float32) + 0.5) * s
        x = centre.view(1, 1, n).expand(num_rows, n, n)
        y = centre.view(1, n, 1).expand(num_rows, n, n)
        row = torch.arange(num_rows, dtype=torch.float32).view(-1, 1, 1).expand(-1, n, n)
        feats.append(torch.stack([x, y, row], 1).contiguous())
    return feats


def _two_branches(size, B=16, S=3):
    """Two batches laid out for one joint pass: the second starts after the first's montages."""
    a = MontageAssembler()([torch.rand(B, 3, size, size) for _ in range(S)])
    b = MontageAssembler()([torch.rand(B, 3, size, size) for _ in range(S)],
                           start=a.num_montages)
    return a, b


def test_level_to_feature_maps_s_to_p5_minus_s():
    assert [montage_level_to_feature(s, 4) for s in range(4)] == [3, 2, 1, 0]
    with pytest.raises(ValueError, match='needs at least 4 feature maps'):
        montage_level_to_feature(3, 3)


def test_tile_pooler_shares_the_roi_layers_of_socos_pooler():
    tiles, soco = TilePooler(STRIDES, out_size=5), MultiLevelRoIPooler(STRIDES, out_size=5)
    assert isinstance(tiles, BaseRoIExtractor) and isinstance(soco, BaseRoIExtractor)
    assert [repr(m) for m in tiles.roi_layers] == [repr(m) for m in soco.roi_layers]


def test_exact_crop_matches_tile_content_and_roi_align():
    strides = STRIDES
    views = [torch.rand(16, 3, 224, 224) for _ in range(3)]
    batch = MontageAssembler()(views)
    feats = _feats_from_montages(batch, strides)
    crop = TilePooler(strides, out_size=7)(feats, batch)
    assert crop.shape == (48, 3, 7, 7)
    roi = TilePooler(strides, out_size=7, force_roi_align=True)(feats, batch)
    assert torch.allclose(crop, roi, atol=1e-5)
    # every tile's pooled feature is the tile's own source image pooled on its level's stride
    for t in (0, 17, 40):
        s = int(batch.level[t])
        stride = strides[3 - s]
        src_img = views[s][batch.src[t]] if s == 0 else None
        x1, y1, x2, y2 = batch.boxes[t].long().tolist()
        tile_px = batch.montages[s][batch.montage[t], :, y1:y2, x1:x2]
        expected = F.avg_pool2d(tile_px[None], stride)[0]
        assert torch.allclose(crop[t], expected, atol=1e-5)
        if src_img is not None:
            assert torch.allclose(expected, F.avg_pool2d(src_img[None], 32)[0], atol=1e-5)


def test_exact_crop_reads_the_tiles_cells_of_its_own_montage():
    """224 px, P(5-s): tile (i, j) of a level-s montage is the 7x7 block of cells
    ``[7i, 7i+7) x [7j, 7j+7)`` of that montage's row in the joint feature batch."""
    a, b = _two_branches(224)
    assert b.start == a.num_montages == 21 and b.montage_offsets == [21, 37, 41]
    feats = _ramp_feats(a.num_montages + b.num_montages, 224)
    for batch in (a, b):
        out = TilePooler(STRIDES, out_size=7)(feats, batch)
        for t in range(0, batch.src.numel(), 5):
            s, m, i, j = (int(v[t]) for v in (batch.level, batch.montage, batch.row, batch.col))
            stride = STRIDES[3 - s]
            cells = (torch.arange(7) + 0.5) * stride
            assert torch.equal(out[t, 0], (cells + 7 * j * stride).expand(7, 7)), t
            assert torch.equal(out[t, 1], (cells + 7 * i * stride)[:, None].expand(7, 7)), t
            assert (out[t, 2] == batch.montage_offsets[s] + m).all(), t


@pytest.mark.parametrize('force', [False, True])
def test_roi_align_reads_each_bins_centre_in_its_own_montage(force):
    """96 px tiles do not cover 7 cells, so the pooler falls back to RoIAlign (one sample per
    bin: bins are smaller than a cell). On a ramp every bin reads the pixel coordinate of its
    own centre, clamped to the first / last cell centre of the map."""
    a, b = _two_branches(96)
    feats = _ramp_feats(a.num_montages + b.num_montages, 96)
    k = 7
    for batch in (a, b):
        out = TilePooler(STRIDES, out_size=k, force_roi_align=force)(feats, batch)
        assert out.shape == (batch.src.numel(), 3, k, k)
        for t in range(0, batch.src.numel(), 3):
            s, m = int(batch.level[t]), int(batch.montage[t])
            stride = STRIDES[3 - s]
            x1, y1, x2, y2 = batch.boxes[t].tolist()
            bins = torch.arange(k) + 0.5
            lo, hi = stride / 2, 96 - stride / 2  # outermost cell centres
            xs = (x1 + bins * (x2 - x1) / k).clamp(lo, hi)
            ys = (y1 + bins * (y2 - y1) / k).clamp(lo, hi)
            assert torch.allclose(out[t, 0], xs.expand(k, k), atol=1e-4), t
            assert torch.allclose(out[t, 1], ys[:, None].expand(k, k), atol=1e-4), t
            assert torch.allclose(out[t, 2], torch.tensor(batch.montage_offsets[s] + m + 0.)), t


def test_unaligned_pooling_equals_socos_pooler_on_the_tile_rois():
    """The fall-back is SoCo's RoIAlign on the batch's tile RoIs, read on level s's map."""
    a, b = _two_branches(96, B=8, S=2)
    feats = [torch.randn(a.num_montages + b.num_montages, 4, 96 // s, 96 // s) for s in STRIDES]
    out = TilePooler(STRIDES, out_size=5)(feats, b)
    for s in range(2):
        idx = 3 - s
        soco = MultiLevelRoIPooler((STRIDES[idx], ), out_size=5, scale_thresholds=())
        expected = soco([feats[idx]], b.rois[b.level_slice(s)])
        assert torch.equal(out[b.level_slice(s)], expected)


def test_joint_pass_layout_is_checked():
    a, b = _two_branches(32, B=4, S=1)
    assert torch.equal(joint_montages([a, b]), torch.cat(a.montages + b.montages))
    with pytest.raises(ValueError, match='assembled with start=4 but its montages begin at row 0'):
        joint_montages([b, a])


def test_wrong_number_of_feature_maps():
    batch = MontageAssembler()([torch.rand(1, 3, 32, 32)])
    with pytest.raises(ValueError, match='got 2 feature maps'):
        TilePooler((4, 8, 16, 32))([torch.rand(1, 3, 8, 8)] * 2, batch)


@pytest.mark.parametrize('force', [False, True])
def test_grid_tiles_cut_every_montage_and_hold_the_levels_own_tiles(force):
    """Official per-level pass: every montage of the branch on the level's map; its own
    montages' rows equal the normal pooling (exact crop and RoIAlign)."""
    a, b = _two_branches(64)
    feats = _ramp_feats(a.num_montages + b.num_montages, 64)
    pooler = TilePooler(STRIDES, out_size=2, force_roi_align=force)
    for batch in (a, b):
        for s in range(batch.num_levels):
            grid = pooler.grid_tiles(feats, batch, s)
            assert grid.shape[0] == batch.num_montages * 4**s
            own = grid[pooler.grid_rows(batch, s)]
            torch.testing.assert_close(own, pooler(feats, batch)[batch.level_slice(s)])
            rows = grid[:, 2].flatten(1).mean(1)  # every tile comes from one of the batch's rows
            assert rows.min() >= batch.start and rows.max() < batch.start + batch.num_montages
