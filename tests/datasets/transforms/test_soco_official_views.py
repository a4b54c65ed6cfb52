"""SoCoViews in the official box mode (visible parts, V3 with its own proposals, V1-only
top-left jitter) and the box-aware InBoxCutout."""
import numpy as np
import pytest

from mcl_plugin.datasets.transforms.geometry import check_photometric
from mcl_plugin.datasets.transforms.soco import (InBoxCutout, PackSoCoInputs, SoCoViews,
                                                 jitter_boxes)

from test_soco_transforms import COLOURS, OBJECTS, interior_colour, scene

OFFICIAL = dict(box_mode='visible_part', independent_v3=True, jitter_views='v1',
                jitter_anchor='top_left')


def official(seed, **kwargs):
    kwargs = dict(dict(num_proposals=4, v1_size=128, v2_size=128, v3_size=64, jitter_prob=0.0,
                       flip_prob=0.0, seed=seed, **OFFICIAL), **kwargs)
    return SoCoViews(**kwargs)(dict(img=scene(), proposals=OBJECTS.copy(), img_path='scene'))


def original(box, region, size):
    """A view box back in original-image pixels (view showing ``region`` at ``size``)."""
    sx, sy = (region[2] - region[0]) / size, (region[3] - region[1]) / size
    return np.array([region[0] + box[0] * sx, region[1] + box[1] * sy,
                     region[0] + box[2] * sx, region[1] + box[3] * sy])


@pytest.mark.parametrize('seed', range(8))
def test_crop_views_get_visible_parts_and_v1_the_whole_proposal(seed):
    out = official(seed)
    assert out['view_boxes'].shape == out['v1_boxes'].shape == (3, 4, 4)
    assert out['view_ids'].shape == out['v1_ids'].shape == (3, 4)
    for j in (1, 2):
        region, size = out['view_regions'][j], out['img'][j].shape[0]
        for box, pid in zip(out['view_boxes'][j], out['view_ids'][j]):
            if pid < 0:
                continue
            obj = OBJECTS[pid]
            visible = np.r_[np.maximum(obj[:2], region[:2]), np.minimum(obj[2:], region[2:])]
            np.testing.assert_allclose(original(box, region, size), visible, atol=1e-3)
            assert np.abs(interior_colour(out['img'][j], box, 0.1) - COLOURS[pid]).max() <= 2
        for box, pid in zip(out['v1_boxes'][j], out['v1_ids'][j]):  # whole, in V1 pixels
            if pid >= 0:
                np.testing.assert_allclose(original(box, (0, 0, 320, 240), 128), OBJECTS[pid],
                                           atol=1e-3)
        # every id of one set is in the other (padding repeats members)
        assert set(out['v1_ids'][j]) == set(out['view_ids'][j])
    np.testing.assert_array_equal(out['view_boxes'][0], out['v1_boxes'][1])


def test_v3_has_its_own_crop_and_proposals_and_the_paper_v3_is_v2_resized():
    regions = [official(s)['view_regions'] for s in range(6)]
    assert any(not np.allclose(r[1], r[2]) for r in regions)
    paper = official(0, independent_v3=False)
    np.testing.assert_allclose(paper['view_regions'][2], paper['view_regions'][1])
    np.testing.assert_allclose(paper['view_boxes'][2], paper['view_boxes'][1] / 2, atol=1e-4)
    np.testing.assert_array_equal(paper['view_ids'][2], paper['view_ids'][1])
    with pytest.raises(ValueError, match='visible_part'):
        SoCoViews(independent_v3=True)


def test_jitter_on_v1_only_anchored_at_the_top_left():
    out, still = official(3, jitter_prob=1.0), official(3)
    np.testing.assert_allclose(out['view_regions'], still['view_regions'])
    for j in (1, 2):  # crop views: the same visible parts (padding draws may differ)
        def by_id(o):
            return {int(i): tuple(b) for i, b in zip(o['view_ids'][j], o['view_boxes'][j])}

        assert by_id(out) == by_id(still)
    assert not np.allclose(out['v1_boxes'][1:], still['v1_boxes'][1:])
    boxes = np.array([[10., 20., 50., 100.]], np.float32)
    r = np.random.RandomState(0).uniform(-0.1, 0.1, size=(1, 4))
    got = jitter_boxes(boxes, 1.0, 0.1, np.random.RandomState(0), anchor='top_left')
    w, h = 40 * (1 + r[0, 2]), 80 * (1 + r[0, 3])
    x1, y1 = 10 + r[0, 0] * 40, 20 + r[0, 1] * 80
    np.testing.assert_allclose(got[0], [x1, y1, x1 + w, y1 + h], rtol=1e-5)


def test_v1_flip_flips_every_v1_box_set():
    a, b = official(5, flip_prob=0.0), official(5, flip_prob=1.0)
    assert b['view_flips'].all()
    flipped = a['v1_boxes'].copy()
    flipped[..., [0, 2]] = 128 - a['v1_boxes'][..., [2, 0]]
    np.testing.assert_allclose(b['v1_boxes'], flipped, atol=1e-4)


def test_in_box_cutout_cuts_inside_its_boxes_only():
    img = np.full((64, 64, 3), 200, np.uint8)
    boxes = np.array([[4., 4., 20., 30.], [30., 30., 60., 60.]], np.float32)
    np.random.seed(0)
    out = InBoxCutout(prob=1.0, fill=(1, 2, 3))(dict(img=img, gt_bboxes=boxes))
    mask = np.zeros((64, 64), bool)
    for (x1, y1, x2, y2), box in zip(out['cutout_boxes'].astype(int), boxes):
        cx, cy = (x1 + x2 - 1) / 2, (y1 + y2 - 1) / 2
        assert box[0] <= cx < box[2] or x1 == 0 or x2 == 64
        assert box[1] <= cy < box[3] or y1 == 0 or y2 == 64
        area = (box[2] - box[0]) * (box[3] - box[1])
        assert 0.1 * area * 0.5 <= (x2 - x1) * (y2 - y1) <= 0.3 * area * 1.5
        mask[y1:y2, x1:x2] = True
    assert (out['img'][mask] == (1, 2, 3)).all() and (out['img'][~mask] == 200).all()
    none = InBoxCutout(prob=0.0)(dict(img=img, gt_bboxes=boxes))
    assert (none['img'] == img).all() and np.isnan(none['cutout_boxes']).all()
    with pytest.raises(KeyError, match='gt_bboxes'):
        InBoxCutout()(dict(img=img))


def test_cutout_is_accepted_by_soco_views_only():
    cut = dict(type='InBoxCutout', prob=1.0)
    out = official(1, view_pipelines=[[], [cut], [cut]])
    assert (out['img'][1] == (104, 116, 124)).all(-1).any()
    assert not (out['img'][0] == (104, 116, 124)).all(-1).any()
    with pytest.raises(ValueError, match='RandomErasing'):
        SoCoViews(view_pipelines=[[dict(type='RandomErasing')]])
    with pytest.raises(ValueError, match='InBoxCutout'):
        check_photometric([cut], 'another view builder', 'masks', '')


def test_pack_carries_the_box_sets():
    packed = PackSoCoInputs()(official(2))
    ds = packed['data_samples']
    assert tuple(ds.v1_boxes.shape) == (3, 4, 4)
    assert tuple(ds.view_ids.shape) == tuple(ds.v1_ids.shape) == (3, 4)


def test_official_soco_star_v4_is_v2_resized():
    out = official(4, v3_size=96, v4_size=48, independent_v4=False)
    np.testing.assert_allclose(out['view_regions'][3], out['view_regions'][1])
    np.testing.assert_allclose(out['view_boxes'][3], out['view_boxes'][1] * 48 / 128, atol=1e-4)
    np.testing.assert_array_equal(out['v1_ids'][3], out['v1_ids'][1])
