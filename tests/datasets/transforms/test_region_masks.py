"""GridRegionTwoView: region masks follow the image through crop, resize and flip; overlap rule."""
import numpy as np
import pytest

from mcl_plugin.datasets.transforms.region_masks import (GridRegionTwoView, box_overlap,
                                                         common_regions, crop_resize_flip_nearest,
                                                         grid_region_map)

# 16 well separated colours (RGB cube corners and mid-points); id -> colour
PALETTE = np.array([(r, g, b) for r in (0, 255) for g in (0, 255)
                    for b in (0, 255)] + [(128, 0, 0), (0, 128, 0), (0, 0, 128), (128, 128, 0),
                                          (0, 128, 128), (128, 0, 128), (128, 128, 128),
                                          (64, 192, 64)], np.uint8)


def region_image(h, w, n=4):
    """An image whose colour encodes the grid region of every pixel."""
    return PALETTE[grid_region_map(h, w, n)]


def decode(view):
    """Region id of every pixel of a view of :func:`region_image` (nearest palette colour)."""
    d = ((view[..., None, :].astype(np.int64) - PALETTE[None, None].astype(np.int64))**2).sum(-1)
    return d.argmin(-1)


def not_tie(box_len, size):
    """Output rows/cols whose source position is not exactly on a pixel edge (resize ties)."""
    pos = (np.arange(size) + 0.5) * box_len / size
    return np.abs(pos - np.round(pos)) > 1e-9


def test_grid_region_map_ids():
    ids = grid_region_map(8, 12, 4)
    assert ids.shape == (8, 12) and ids.dtype == np.uint8
    assert ids[0, 0] == 0 and ids[0, 11] == 3 and ids[7, 0] == 12 and ids[7, 11] == 15
    assert (np.bincount(ids.ravel()) == 2 * 3).all()  # every region 2 x 3 pixels
    assert ids[1, 2] == 0 and ids[1, 3] == 1 and ids[2, 2] == 4


def test_each_geometric_step_moves_the_id_map_like_the_image():
    ids = grid_region_map(40, 60, 4)
    box = (13, 7, 45, 31)  # 32 x 24 crop
    # crop only (output = crop size in each direction is a pure crop)
    np.testing.assert_array_equal(crop_resize_flip_nearest(ids, (13, 7, 37, 31), 24, False),
                                  ids[7:31, 13:37])
    # flip
    np.testing.assert_array_equal(crop_resize_flip_nearest(ids, (13, 7, 37, 31), 24, True),
                                  ids[7:31, 13:37][:, ::-1])
    # resize x2 of a square crop = pixel repetition
    np.testing.assert_array_equal(crop_resize_flip_nearest(ids, (10, 5, 30, 25), 40, False),
                                  np.repeat(np.repeat(ids[5:25, 10:30], 2, 0), 2, 1))
    # downscale /4: output pixel k samples the source position (k + 0.5) * 4 = 2 + 4k
    np.testing.assert_array_equal(crop_resize_flip_nearest(ids, (0, 0, 40, 40), 10, False),
                                  ids[2:40:4, 2:40:4])
    assert crop_resize_flip_nearest(ids, box, 16, False).shape == (16, 16)


@pytest.mark.parametrize('flip_prob', [0.0, 1.0])
def test_masks_follow_the_image_exactly_with_nearest_resize(flip_prob):
    np.random.seed(1)
    img = region_image(90, 130)
    t = GridRegionTwoView(size=48, flip_prob=flip_prob, interpolation='nearest', min_overlap=0.0)
    for _ in range(6):
        out = t(dict(img=img.copy()))
        assert len(out['img']) == 2 and out['region_masks'].shape == (2, 48, 48)
        assert (out['flips'] == bool(flip_prob)).all()
        for view, mask, box in zip(out['img'], out['region_masks'], out['crop_boxes']):
            x1, y1, x2, y2 = box.astype(int)
            rows, cols = not_tie(y2 - y1, 48), not_tie(x2 - x1, 48)
            if flip_prob:
                cols = cols[::-1]
            got = decode(view)[rows][:, cols]
            np.testing.assert_array_equal(got, mask[rows][:, cols])
            assert rows.mean() > 0.5 and cols.mean() > 0.5


def test_masks_follow_the_image_bilinear_and_at_a_lower_mask_resolution():
    np.random.seed(2)
    img = region_image(120, 100)
    size, mask_size = 64, 16
    t = GridRegionTwoView(size=size, mask_size=mask_size, flip_prob=0.5)
    flipped = set()
    for _ in range(8):
        out = t(dict(img=img.copy()))
        for view, mask, flip in zip(out['img'], out['region_masks'], out['flips']):
            flipped.add(bool(flip))
            step = size // mask_size
            centres = decode(view)[step // 2::step, step // 2::step]  # pixel at each cell centre
            assert centres.shape == mask.shape
            # away from region borders (3x3 neighbourhood with one id) the ids must agree
            pad = np.pad(mask, 1, mode='edge')
            interior = np.ones_like(mask, bool)
            for dy in range(3):
                for dx in range(3):
                    interior &= pad[dy:dy + mask_size, dx:dx + mask_size] == mask
            assert interior.mean() > 0.3
            np.testing.assert_array_equal(centres[interior], mask[interior])
    assert flipped == {True, False}


def test_overlap_rule_and_common_regions():
    np.random.seed(3)
    img = region_image(100, 160)
    t = GridRegionTwoView(size=32, mask_size=16, min_overlap=0.5, max_tries=20)
    ok = 0
    for _ in range(40):
        out = t(dict(img=img.copy()))
        boxes = [tuple(int(v) for v in b) for b in out['crop_boxes']]
        overlap = box_overlap(*boxes)
        assert overlap == pytest.approx(out['region_overlap'])
        ok += overlap >= 0.5
        assert overlap >= 0.5 or out['overlap_tries'] == 20  # else it is the bounded fallback
        masks = out['region_masks']
        expected = [r for r in range(16) if (masks[0] == r).any() and (masks[1] == r).any()]
        assert np.nonzero(out['common_regions'])[0].tolist() == expected
        assert len(expected) >= 1
    assert ok >= 38


def test_box_overlap_is_relative_to_the_smaller_box():
    assert box_overlap((0, 0, 10, 10), (5, 0, 25, 10)) == pytest.approx(0.5)
    assert box_overlap((0, 0, 10, 10), (2, 2, 6, 6)) == 1.0
    assert box_overlap((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    maps = np.array([[[0, 1], [4, 5]], [[1, 1], [5, 6]]])
    assert np.nonzero(common_regions(maps, 16))[0].tolist() == [1, 5]


class _Disjoint(GridRegionTwoView):
    """Draws only disjoint crop pairs, so the rule can never be met."""

    boxes = [(0, 0, 20, 20), (60, 60, 80, 80)]

    def _draw_box(self, img):
        self.boxes.append(self.boxes.pop(0))
        return self.boxes[-1]


def test_fallback_reuses_the_first_crop_when_no_pair_overlaps():
    t = _Disjoint(size=20, max_tries=5, flip_prob=0.0)
    out = t(dict(img=region_image(80, 80)))
    assert out['overlap_tries'] == 5
    np.testing.assert_array_equal(out['crop_boxes'][0], out['crop_boxes'][1])
    np.testing.assert_array_equal(out['region_masks'][0], out['region_masks'][1])
    assert out['common_regions'].any()


def test_rejects_geometric_transforms_in_view_pipelines():
    with pytest.raises(ValueError, match='geometric'):
        GridRegionTwoView(transforms=[[dict(type='RandomFlip', prob=0.5)], []])
    with pytest.raises(ValueError, match='geometric'):
        GridRegionTwoView(transforms=[[],
                                      [
                                          dict(type='RandomApply',
                                               prob=0.5,
                                               transforms=[dict(type='RandomResizedCrop', scale=8)])
                                      ]])


def test_photometric_pipelines_and_packing_keep_the_maps_per_view():
    from mcl_plugin.registry import TRANSFORMS
    t = TRANSFORMS.build(
        dict(type='GridRegionTwoView',
             size=32,
             mask_size=8,
             transforms=[[dict(type='RandomGrayscale', prob=1.0, keep_channels=True)], []]))
    pack = TRANSFORMS.build(
        dict(type='PackInputs', algorithm_keys=['region_masks', 'common_regions']))
    out = pack(t(dict(img=region_image(50, 70), img_path='x.png')))
    v1, v2 = out['inputs']
    assert tuple(v1.shape) == tuple(v2.shape) == (3, 32, 32)
    assert (v1[0] == v1[1]).all() and not (v2[0] == v2[1]).all()  # only view 1 is grey
    ds = out['data_samples']
    assert ds.region_masks.shape == (2, 8, 8) and ds.common_regions.shape == (16, )


def test_teacher_view_overlaps_view_one_and_overlap_switch():
    """``teacher_view``: a third crop overlapping view 1 by >= 50 % of the larger crop, with
    its own flip, no region map; ``min_overlap=0`` (official) accepts the first pair that
    shares a region."""
    img = region_image(120, 160)
    np.random.seed(0)
    t = GridRegionTwoView(size=32, grid_size=4, mask_size=8, teacher_view=True, flip_prob=0.5)
    for _ in range(20):
        out = t(dict(img=img.copy()))
        assert len(out['img']) == 3 and out['img'][2].shape == (32, 32, 3)
        assert out['region_masks'].shape == (2, 8, 8)
        assert out['crop_boxes'].shape == (3, 4) and out['flips'].shape == (3, )
        a, c = out['crop_boxes'][0], out['crop_boxes'][2]
        inter = (min(a[2], c[2]) - max(a[0], c[0])) * (min(a[3], c[3]) - max(a[1], c[1]))
        larger = max((b[2] - b[0]) * (b[3] - b[1]) for b in (a, c))
        assert inter / larger >= 0.5
        # the teacher view shows the image inside its box, like the other views
        x1, y1, x2, y2 = (int(v) for v in c)
        ids = crop_resize_flip_nearest(grid_region_map(120, 160, 4), (x1, y1, x2, y2), 32,
                                       bool(out['flips'][2]))
        assert (decode(out['img'][2]) == ids).mean() > 0.9
    free = GridRegionTwoView(size=32, grid_size=4, mask_size=8, min_overlap=0.)
    tries = [free(dict(img=img.copy()))['overlap_tries'] for _ in range(20)]
    assert min(tries) == 1 and np.mean(tries) < 1.5
    assert 'teacher_view=False' in repr(free)
