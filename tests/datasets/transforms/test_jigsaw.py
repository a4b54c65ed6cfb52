"""JigsawPatches / GlobalLocalViews: patch geometry (every patch is the pixels of its own grid
cell of the crop), order/shuffle, per-sample and per-patch independence, packing."""
import numpy as np
import pytest
import torch
from mmengine.dataset import default_collate

from mcl_plugin.datasets.transforms import GlobalLocalViews, JigsawPatches
from mcl_plugin.datasets.transforms.jigsaw import JIGSAW_META_KEYS
from mcl_plugin.registry import TRANSFORMS


def coord_image(h: int = 255, w: int = 255) -> np.ndarray:
    """uint8 image whose pixel (y, x) is (y, x, 7): pixel values are their coordinates."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy, xx, np.full_like(yy, 7)], -1).astype(np.uint8)


def test_patches_are_the_pixels_of_their_grid_cell():
    np.random.seed(0)
    # A 255 square image and crop ratio 1 -> the crop is the image itself (identity resize), so
    # every patch's pixel values name where it was cut from.
    t = JigsawPatches(crop_ratio_range=(1., 1.), aspect_ratio_range=(1., 1.))
    img = coord_image()
    for _ in range(5):
        out = t(dict(img=img.copy()))
        assert len(out['img']) == 9 and out['patch_order'].tolist() == list(range(9))
        np.testing.assert_array_equal(out['jigsaw_crop_box'], [0, 0, 255, 255])
        for i, patch in enumerate(out['img']):
            assert patch.shape == (64, 64, 3)
            x1, y1, x2, y2 = out['patch_boxes'][i].astype(int)
            row, col = divmod(int(out['patch_order'][i]), 3)
            # the box lies inside cell (row, col) of the 85 px grid
            assert col * 85 <= x1 and x2 <= (col + 1) * 85, (i, x1, x2)
            assert row * 85 <= y1 and y2 <= (row + 1) * 85, (i, y1, y2)
            # the pixels are the crop's pixels at that box
            assert patch[0, 0, 0] == y1 and patch[0, 0, 1] == x1
            np.testing.assert_array_equal(patch, img[y1:y2, x1:x2])


def test_patches_follow_the_random_crop_of_a_larger_image():
    np.random.seed(1)
    t = JigsawPatches(keep_crop=True)
    img = np.random.randint(0, 256, (300, 420, 3), dtype=np.uint8)
    offsets = set()
    for _ in range(8):
        out = t(dict(img=img.copy()))
        crop = out['jigsaw_crop']
        assert crop.shape == (255, 255, 3)
        x1, y1, x2, y2 = out['jigsaw_crop_box']
        assert 0 <= x1 < x2 <= 420 and 0 <= y1 < y2 <= 300
        area = (x2 - x1) * (y2 - y1) / (300 * 420)
        assert 0.6 - 0.02 <= area <= 1.0  # crop of at least 60% (integer rounding)
        for i, patch in enumerate(out['img']):
            bx1, by1, bx2, by2 = out['patch_boxes'][i].astype(int)
            np.testing.assert_array_equal(patch, crop[by1:by2, bx1:bx2])
            offsets.add((bx1 % 85, by1 % 85))
    # jitter inside the cells covers the whole 0..21 range of positions, not a fixed offset
    xs, ys = zip(*offsets)
    assert min(xs) == 0 or max(xs) > 15
    assert len(offsets) > 30 and max(xs) <= 21 and max(ys) <= 21


def test_shuffle_records_the_permutation():
    np.random.seed(2)
    t = JigsawPatches(crop_ratio_range=(1., 1.), aspect_ratio_range=(1., 1.), shuffle=True)
    img = coord_image()
    orders = set()
    for _ in range(6):
        out = t(dict(img=img.copy()))
        order = out['patch_order']
        assert sorted(order.tolist()) == list(range(9))
        orders.add(tuple(order.tolist()))
        for i, patch in enumerate(out['img']):
            row, col = divmod(int(order[i]), 3)
            # the i-th patch in the output comes from cell order[i]
            assert row * 85 <= patch[0, 0, 0] < (row + 1) * 85 - 63
            assert col * 85 <= patch[0, 0, 1] < (col + 1) * 85 - 63
    assert len(orders) > 1


def test_each_patch_gets_its_own_augmentation():
    np.random.seed(3)
    t = JigsawPatches(patch_pipeline=[
        dict(type='HueSafeColorJitter', brightness=0.8, contrast=0., saturation=0., hue=0.)
    ])
    grey = np.full((300, 300, 3), 120, np.uint8)
    out = t(dict(img=grey))
    means = [float(p.mean()) for p in out['img']]
    assert len(set(round(m, 3) for m in means)) > 5  # nine independent brightness draws
    # once-per-crop reading: every patch shares the crop's jitter
    t2 = JigsawPatches(crop_pipeline=[
        dict(type='HueSafeColorJitter', brightness=0.8, contrast=0., saturation=0., hue=0.)
    ])
    means2 = {round(float(p.mean()), 3) for p in t2(dict(img=grey))['img']}
    assert len(means2) == 1


def test_invalid_geometry_raises():
    with pytest.raises(ValueError, match='patch_size'):
        JigsawPatches(crop_size=255, grid=3, patch_size=86)


def _pipeline():
    global_pipeline = [
        dict(type='RandomResizedCrop', scale=32, crop_ratio_range=(0.2, 1.), backend='pillow'),
        dict(type='RandomFlip', prob=0.5),
    ]
    local_pipeline = [dict(type='JigsawPatches', crop_size=48, patch_size=12)]
    return [
        dict(type='GlobalLocalViews',
             global_pipeline=global_pipeline,
             local_pipeline=local_pipeline),
        dict(type='PackInputs', meta_keys=JIGSAW_META_KEYS),
    ]


def test_views_are_packed_for_one_backbone_pass_and_independent_per_sample():
    np.random.seed(4)
    from mmcv.transforms import Compose
    pipeline = Compose([TRANSFORMS.build(c) for c in _pipeline()])
    assert isinstance(pipeline.transforms[0], GlobalLocalViews)
    img = np.random.randint(0, 256, (80, 100, 3), dtype=np.uint8)
    # The same image four times, as a batch: every sample draws its own crops and patches.
    batch = default_collate([pipeline(dict(img=img.copy())) for _ in range(4)])
    inputs, samples = batch['inputs'], batch['data_samples']
    assert len(inputs) == 2 + 2 * 9
    assert all(x.shape == (4, 3, 32, 32) for x in inputs[:2])
    assert all(x.shape == (4, 3, 12, 12) for x in inputs[2:])
    assert samples[0].num_global_views == 2 and samples[0].num_patch_sets == 2
    assert samples[0].patch_boxes.shape == (2, 9, 4)
    crop_boxes = [tuple(s.jigsaw_crop_box[k].tolist()) for s in samples for k in range(2)]
    assert len(set(crop_boxes)) == 8  # no crop shared between sets or samples
    patch_boxes = torch.stack([torch.as_tensor(s.patch_boxes) for s in samples])
    assert not torch.equal(patch_boxes[0], patch_boxes[1])
    assert not torch.equal(patch_boxes[:, 0], patch_boxes[:, 1])  # query set != key set
    # the patch tensors differ between samples of the batch (not one crop for the whole batch)
    p = inputs[2].float()
    assert (p[0] - p[1]).abs().mean() > 1 and (p[2] - p[3]).abs().mean() > 1


def test_flipped_crop_is_cut_after_the_flip():
    """``flip_prob``: the whole crop is flipped, then cut (the public code's order); every
    patch is the mirror of the un-flipped crop at its box, which lies in its (mirrored) cell."""
    np.random.seed(5)
    t = JigsawPatches(crop_ratio_range=(1., 1.), aspect_ratio_range=(1., 1.), flip_prob=1.,
                      shuffle=True, keep_crop=True)
    img = coord_image()
    out = t(dict(img=img.copy()))
    np.testing.assert_array_equal(out['jigsaw_crop'], img[:, ::-1])
    for i, patch in enumerate(out['img']):
        x1, y1, x2, y2 = out['patch_boxes'][i].astype(int)
        row, col = divmod(int(out['patch_order'][i]), 3)
        assert col * 85 <= x1 and x2 <= (col + 1) * 85 and row * 85 <= y1 and y2 <= (row + 1) * 85
        np.testing.assert_array_equal(patch, img[y1:y2, x1:x2][:, ::-1])
    assert sorted(out['patch_order'].tolist()) == list(range(9))
    np.random.seed(5)
    never = JigsawPatches(crop_ratio_range=(1., 1.), aspect_ratio_range=(1., 1.), flip_prob=0.)
    patch = never(dict(img=img.copy()))['img'][0]
    x1, y1 = patch[0, 0, 1], patch[0, 0, 0]
    assert patch[0, 1, 1] == x1 + 1  # not mirrored
    with pytest.raises(ValueError, match='flip_prob'):
        JigsawPatches(flip_prob=1.5)


def test_augment_once_then_cut_shares_one_draw_across_the_set():
    """The paper-size pipeline (colour on the crop, crop flip): the 9 patches of a set share
    one flip; with per-patch flips they do not."""
    once = JigsawPatches(crop_ratio_range=(1., 1.), aspect_ratio_range=(1., 1.), flip_prob=0.5)
    each = JigsawPatches(crop_ratio_range=(1., 1.), aspect_ratio_range=(1., 1.),
                         patch_pipeline=[dict(type='RandomFlip', prob=0.5)])
    img = coord_image()
    np.random.seed(6)
    for t, shared in ((once, True), (each, False)):
        # per set: which patches are mirrored (pixel x decreases to the right)
        sets = [{bool(p[0, 1, 1] < p[0, 0, 1]) for p in t(dict(img=img.copy()))['img']}
                for _ in range(4)]
        if shared:
            assert all(len(m) == 1 for m in sets) and len(set.union(*sets)) == 2
        else:
            assert any(len(m) == 2 for m in sets)
