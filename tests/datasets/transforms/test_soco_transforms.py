"""SoCoViews / PackSoCoInputs: proposals stay on their object through every view operation."""
import numpy as np
import pytest
import torch

from mcl_plugin.datasets.transforms.geometry import (clip_to_region, sample_crop, to_boxes,
                                                     to_view)
from mcl_plugin.datasets.transforms.soco import PackSoCoInputs, SoCoViews, jitter_boxes

H, W = 240, 320
#: three non-overlapping objects, each a flat, distinct colour (BGR) on a grey background
OBJECTS = np.array([[16, 24, 120, 136], [168, 16, 304, 120], [136, 144, 296, 232]], np.float32)
COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)


def scene() -> np.ndarray:
    img = np.full((H, W, 3), 128, np.uint8)
    for (x1, y1, x2, y2), c in zip(OBJECTS.astype(int), COLOURS):
        img[y1:y2, x1:x2] = c
    return img


def interior_colour(view: np.ndarray, box: np.ndarray, margin: float = 0.2) -> np.ndarray:
    """Median colour of the central part of ``box`` in ``view``."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    xs = slice(int(np.ceil(x1 + dx)), int(np.floor(x2 - dx)))
    ys = slice(int(np.ceil(y1 + dy)), int(np.floor(y2 - dy)))
    patch = view[ys, xs].reshape(-1, 3)
    assert len(patch), (box, view.shape)
    return np.median(patch, axis=0)


def views_of(seed, **kwargs):
    kwargs = dict(dict(num_proposals=4, v1_size=128, v2_size=128, v3_size=64, v4_size=96,
                       jitter_prob=0.0, seed=seed), **kwargs)
    return SoCoViews(**kwargs)(dict(img=scene(), proposals=OBJECTS.copy(), img_path='scene'))


@pytest.mark.parametrize('seed', range(12))
def test_each_proposal_shows_its_object_in_every_view(seed):
    out = views_of(seed)
    assert [v.shape for v in out['img']] == [(128, 128, 3), (128, 128, 3), (64, 64, 3),
                                              (96, 96, 3)]
    assert out['view_boxes'].shape == (4, 4, 4)
    for v, view in enumerate(out['img']):
        for k, pid in enumerate(out['proposal_ids']):
            box = out['view_boxes'][v, k]
            size = view.shape[0]
            assert (box >= -1e-4).all() and (box <= size + 1e-4).all()
            assert box[2] > box[0] and box[3] > box[1]
            if pid < 0:  # whole shared region: nothing to check against an object
                continue
            assert np.abs(interior_colour(view, box) - COLOURS[pid]).max() <= 2, (v, k, pid)


def test_geometry_of_the_views_is_exact():
    """V1 is a plain resize, V3 = V2 / 2, flips mirror the boxes: check the numbers."""
    for seed in range(20):
        out = views_of(seed, v4_size=None, flip_prob=0.0)
        b1, b2, b3 = out['view_boxes']
        ids = out['proposal_ids']
        if (ids < 0).any():
            continue
        # V1 box = the object clipped to V2's region, in V1 pixels
        region = out['view_regions'][1] * np.array([128 / W, 128 / H] * 2, np.float32)
        expected = clip_to_region(to_view(to_boxes(OBJECTS[ids]), (0, 0, W, H), (128, 128)),
                                  region)
        np.testing.assert_allclose(b1, expected.numpy(), atol=1e-3)
        np.testing.assert_allclose(b2, to_view(to_boxes(b1), region, (128, 128)).numpy(),
                                   atol=1e-3)
        np.testing.assert_allclose(b3, b2 / 2, atol=1e-4)
    flipped = views_of(3, v4_size=None, flip_prob=1.0)
    plain = views_of(3, v4_size=None, flip_prob=0.0)
    assert flipped['view_flips'].all() and not plain['view_flips'].any()
    for v, size in enumerate((128, 128, 64)):
        mirrored = to_boxes(plain['view_boxes'][v])
        mirrored.flip_((size, size))
        np.testing.assert_allclose(flipped['view_boxes'][v], mirrored.numpy(), atol=1e-4)
        np.testing.assert_array_equal(flipped['img'][v], plain['img'][v][:, ::-1])


def test_jittered_boxes_stay_on_their_object():
    for seed in range(10):
        out = views_of(seed, jitter_prob=1.0, jitter_ratio=0.1)
        for v, view in enumerate(out['img']):
            for k, pid in enumerate(out['proposal_ids']):
                if pid < 0:
                    continue
                box = out['view_boxes'][v, k]
                # +-10 % moves cannot leave the object's centre region
                assert np.abs(interior_colour(view, box, margin=0.3) - COLOURS[pid]).max() <= 2


def test_jitter_statistics():
    rng = np.random.RandomState(0)
    boxes = np.tile(np.array([[10, 20, 110, 70]], np.float32), (4000, 1))
    out = jitter_boxes(boxes, 0.5, 0.1, rng)
    changed = np.abs(out - boxes).max(1) > 1e-6
    assert 0.45 < changed.mean() < 0.55
    w, h = out[:, 2] - out[:, 0], out[:, 3] - out[:, 1]
    cx, cy = (out[:, 0] + out[:, 2]) / 2, (out[:, 1] + out[:, 3]) / 2
    assert np.all(np.abs(w / 100 - 1) <= 0.1 + 1e-5) and np.all(np.abs(h / 50 - 1) <= 0.1 + 1e-5)
    assert np.all(np.abs(cx - 60) <= 10 + 1e-4) and np.all(np.abs(cy - 45) <= 5 + 1e-4)
    assert np.abs(w[changed] / 100 - 1).max() > 0.09  # the full range is used
    np.testing.assert_array_equal(jitter_boxes(boxes, 0.0, 0.1, rng), boxes)


def test_outside_proposals_are_dropped_and_whole_region_fallback():
    """One small proposal in a corner, small crops: either it is visible (then it is on its
    object in V2) or no proposal is and the whole shared region is used (id -1)."""
    small = np.array([[0, 0, 120, 90]], np.float32)
    img = np.full((H, W, 3), 128, np.uint8)
    img[0:90, 0:120] = (255, 0, 0)
    seen = set()
    for seed in range(30):
        t = SoCoViews(num_proposals=2, v1_size=128, v2_size=128, v3_size=None,
                      crop_scale=(0.25, 0.3), jitter_prob=0.0, flip_prob=0.0, max_tries=1,
                      seed=seed)
        out = t(dict(img=img.copy(), proposals=small.copy()))
        ids = out['proposal_ids']
        if ids[0] == 0:
            seen.add('visible')
            region = out['view_regions'][1]
            inter = (min(region[2], 120) - max(region[0], 0)) * (min(region[3], 90) -
                                                                   max(region[1], 0))
            assert inter >= 0.5 * 120 * 90 - 1e-3  # min_visible
            assert np.abs(interior_colour(out['img'][1], out['view_boxes'][1, 0]) -
                          (255, 0, 0)).max() <= 2
            assert out['is_pad'].tolist() == [False, True]
        else:
            seen.add('fallback')
            assert ids.tolist() == [-1, -1] and out['is_pad'].tolist() == [False, True]
            np.testing.assert_allclose(out['view_boxes'][1], [[0, 0, 128, 128]] * 2, atol=1e-3)
    assert seen == {'visible', 'fallback'}


def test_k_sampling_pads_with_repeats():
    props = OBJECTS[:2].copy()
    out = SoCoViews(num_proposals=5, v1_size=128, v2_size=128, v3_size=64, jitter_prob=0.0,
                    crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), seed=0)(
                        dict(img=scene(), proposals=props))
    ids, pads = out['proposal_ids'], out['is_pad']
    assert sorted(ids[~pads].tolist()) == [0, 1] and pads.sum() == 3
    assert set(ids[pads].tolist()) <= {0, 1}
    many = SoCoViews(num_proposals=2, v1_size=128, crop_scale=(1.0, 1.0), seed=1)(
        dict(img=scene(), proposals=OBJECTS.copy()))
    assert len(set(many['proposal_ids'].tolist())) == 2 and not many['is_pad'].any()


def test_sample_crop_ranges():
    rng = np.random.RandomState(0)
    for _ in range(200):
        x1, y1, x2, y2 = sample_crop(224, 224, (0.5, 1.0), (3 / 4, 4 / 3), rng)
        area = (x2 - x1) * (y2 - y1) / 224**2
        assert 0 <= x1 < x2 <= 224 and 0 <= y1 < y2 <= 224
        assert 0.49 <= area <= 1.0 and 0.74 <= (x2 - x1) / (y2 - y1) <= 1.36


def test_pack_and_errors():
    t = SoCoViews(num_proposals=3, v1_size=64, v2_size=64, v3_size=32, seed=0,
                  view_pipelines=[[dict(type='RandomGrayscale', prob=1.0, keep_channels=True)]])
    res = t(dict(img=scene(), proposals=OBJECTS.copy(), proposal_img_size=(W, H),
                 img_path='a.jpg', sample_idx=7))
    assert all(np.array_equal(v[..., 0], v[..., 1]) for v in res['img'])  # pipeline ran
    packed = PackSoCoInputs()(res)
    inputs, ds = packed['inputs'], packed['data_samples']
    assert [tuple(x.shape) for x in inputs] == [(3, 64, 64), (3, 64, 64), (3, 32, 32)]
    assert inputs[0].dtype == torch.uint8
    assert ds.view_boxes.shape == (3, 3, 4) and ds.view_boxes.dtype == torch.float32
    assert ds.proposal_ids.dtype == torch.int64 and ds.is_pad.dtype == torch.bool
    assert ds.metainfo['sample_idx'] == 7 and len(ds.metainfo['view_flips']) == 3

    with pytest.raises(ValueError, match='made on a 100x100 image'):
        t(dict(img=scene(), proposals=OBJECTS.copy(), proposal_img_size=(100, 100)))
    with pytest.raises(ValueError, match='moves pixels without moving the proposals'):
        SoCoViews(view_pipelines=[[dict(type='RandomFlip', prob=0.5)]])
    with pytest.raises(ValueError, match='makes 3 views'):
        SoCoViews(view_pipelines=[[], []])
    with pytest.raises(KeyError, match='SoCoViews before'):
        PackSoCoInputs()(dict(img=[scene()]))
