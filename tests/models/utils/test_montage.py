import pytest
import torch
import torch.nn.functional as F

from mcl_plugin.models.utils import MontageAssembler, assemble_montage, downsample


def _expected_tile(images, idx, level):
    if level == 0:
        return images[idx]
    r = 2**level
    h, w = images.shape[-2] // r, images.shape[-1] // r
    return F.interpolate(images[idx:idx + 1], size=(h, w), mode='bilinear', align_corners=False,
                         antialias=True)[0]


@pytest.mark.parametrize('level', [0, 1, 2, 3])
def test_tiles_hold_the_downsampled_source_images(level):
    images = torch.rand(64, 3, 32, 48)
    montages, src = assemble_montage(images, level, torch.Generator().manual_seed(1))
    r = 2**level
    assert montages.shape == (64 // r**2, 3, 32, 48)
    assert src.shape == (64 // r**2, r, r) and src.dtype == torch.long
    assert sorted(src.flatten().tolist()) == list(range(64))  # a permutation: nothing dropped
    h, w = 32 // r, 48 // r
    for m in range(src.shape[0]):
        for i in range(r):
            for j in range(r):
                tile = montages[m, :, i * h:(i + 1) * h, j * w:(j + 1) * w]
                assert torch.allclose(tile, _expected_tile(images, src[m, i, j], level),
                                      atol=1e-6)


def test_level0_is_a_shuffle_and_generator_is_deterministic():
    images = torch.rand(8, 3, 16, 16)
    a, src_a = assemble_montage(images, 0, torch.Generator().manual_seed(3))
    b, src_b = assemble_montage(images, 0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(src_a, src_b)
    assert torch.equal(a, images[src_a.flatten()])
    assert not torch.equal(src_a.flatten(), torch.arange(8))  # seed 3 does shuffle


def test_remainder_pad_keeps_every_image_and_error_mode_raises():
    images = torch.rand(10, 3, 16, 16)
    montages, src = assemble_montage(images, 1)
    assert montages.shape[0] == 3 and src.numel() == 12
    assert set(src.flatten().tolist()) == set(range(10))
    with pytest.raises(ValueError, match='does not fill level-1 montages'):
        assemble_montage(images, 1, remainder='error')
    small = torch.rand(3, 3, 16, 16)
    montages, src = assemble_montage(small, 2)  # fewer images than tiles: cycle through them
    assert montages.shape[0] == 1 and set(src.flatten().tolist()) == {0, 1, 2}
    counts = torch.bincount(src.flatten())
    assert counts.max() - counts.min() <= 1


def test_bad_shapes_have_clear_errors():
    with pytest.raises(ValueError, match='not divisible by the level-2 ratio 4'):
        assemble_montage(torch.rand(16, 3, 18, 16), 2)
    with pytest.raises(ValueError, match=r'\(B, C, H, W\)'):
        assemble_montage(torch.rand(3, 16, 16), 0)


@pytest.mark.parametrize('dtype', [torch.uint8, torch.float64, torch.bfloat16])
def test_any_dtype(dtype):
    images = (torch.rand(16, 3, 8, 8) * 255).to(dtype)
    montages, src = assemble_montage(images, 1)
    assert montages.dtype == dtype and montages.shape == (4, 3, 8, 8)
    ref = downsample(images, 1)[src[0, 1, 0]]
    assert torch.equal(montages[0, :, 0:4, 4:8], downsample(images, 1)[src[0, 0, 1]])
    assert torch.equal(montages[0, :, 4:8, 0:4], ref)


def test_assembler_metadata_round_trips():
    views = [torch.rand(16, 3, 32, 32) for _ in range(3)]
    batch = MontageAssembler()(views, torch.Generator().manual_seed(0))
    assert [m.shape[0] for m in batch.montages] == [16, 4, 1]
    assert batch.src.shape == (48, ) and batch.num_padded == [0, 0, 0]
    for t in range(batch.src.numel()):
        s, m = int(batch.level[t]), int(batch.montage[t])
        x1, y1, x2, y2 = batch.boxes[t].long().tolist()
        assert batch.src_index[s][m, batch.row[t], batch.col[t]] == batch.src[t]
        crop = batch.montages[s][m, :, y1:y2, x1:x2]
        assert torch.allclose(crop, downsample(views[s], s)[batch.src[t]], atol=1e-6)
    sl = batch.level_slice(1)
    assert (batch.level[sl] == 1).all() and sl.stop - sl.start == 16


def test_assembler_rejects_mismatched_views():
    with pytest.raises(ValueError, match='same-size views'):
        MontageAssembler()([torch.rand(4, 3, 16, 16), torch.rand(4, 3, 8, 8)])


def test_batch_owns_its_rois_and_offsets_in_the_joint_pass():
    views = [torch.rand(16, 3, 32, 32) for _ in range(3)]
    batch = MontageAssembler()(views, torch.Generator().manual_seed(0), start=5)
    assert batch.num_montages == 21 and batch.montage_offsets == [5, 21, 25]
    assert batch.tile_offsets == [0, 16, 32, 48]
    assert batch.montage_rows(1) == slice(21, 25)
    rows = torch.tensor([5, 21, 25])[batch.level] + batch.montage
    assert torch.equal(batch.rois, torch.cat([rows[:, None].float(), batch.boxes], 1))
    assert batch.rois[batch.level_slice(2)].tolist() == [
        [25., x * 8., y * 8., x * 8. + 8, y * 8. + 8] for y in range(4) for x in range(4)]
