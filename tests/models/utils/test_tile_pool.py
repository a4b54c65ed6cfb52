import pytest
import torch

from mcl_plugin.models.utils import MontageAssembler, TilePooler, montage_level_to_feature


def _feats_from_montages(batch, strides):
    """Feature maps whose cells are the average-pooled montage pixels (known content)."""
    images = torch.cat(batch.montages)
    return [torch.nn.functional.avg_pool2d(images, s) for s in strides]


def test_level_to_feature_maps_s_to_p5_minus_s():
    assert [montage_level_to_feature(s, 4) for s in range(4)] == [3, 2, 1, 0]
    with pytest.raises(ValueError, match='needs at least 4 feature maps'):
        montage_level_to_feature(3, 3)


def test_exact_crop_matches_tile_content_and_roi_align():
    strides = (4, 8, 16, 32)
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
        expected = torch.nn.functional.avg_pool2d(tile_px[None], stride)[0]
        assert torch.allclose(crop[t], expected, atol=1e-5)
        if src_img is not None:
            assert torch.allclose(expected, torch.nn.functional.avg_pool2d(src_img[None],
                                                                           32)[0], atol=1e-5)


def test_unaligned_sizes_fall_back_to_roi_align():
    strides = (4, 8, 16, 32)
    views = [torch.rand(4, 3, 96, 96) for _ in range(2)]
    batch = MontageAssembler()(views)
    feats = _feats_from_montages(batch, strides)
    out = TilePooler(strides, out_size=7)(feats, batch)
    assert out.shape == (8, 3, 7, 7) and torch.isfinite(out).all()


def test_wrong_number_of_feature_maps():
    batch = MontageAssembler()([torch.rand(1, 3, 32, 32)])
    with pytest.raises(ValueError, match='got 2 feature maps'):
        TilePooler((4, 8, 16, 32))([torch.rand(1, 3, 8, 8)] * 2, batch)
