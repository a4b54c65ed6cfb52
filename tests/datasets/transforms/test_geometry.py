"""View geometry shared by SoCoViews, GridRegionTwoView and JigsawPatches / GlobalLocalViews.

(a) Boxes, region masks and patch boxes follow the image through every view builder, with
    photometric transforms inside each wrapper (RandomApply, RandomChoice, mmdet's RandomOrder):
    a region of the synthetic image is painted a unique colour, and after the transform the
    output box covers that colour and the colour lies inside the box.
(b) A geometric transform inside a wrapper is refused with an error naming it (SoCoViews
    accepted ``RandomApply([RandomFlip])`` before the shared check, and its boxes then stopped
    following the flipped image).
"""
import numpy as np
import pytest
from mmcv.transforms import BaseTransform

from mcl_plugin.registry import TRANSFORMS

H, W = 240, 320
#: two painted objects (x1, y1, x2, y2) and their unique colours (BGR) on a background: grey
#: levels with the background in between, so that no resize blend of one object with the
#: background looks like the other object, also after the (monotone) photometric transforms
MARKS = np.array([[40, 56, 120, 136], [184, 96, 280, 176]], np.float32)
COLOURS = [(30, 30, 30), (230, 230, 230)]
BACKGROUND = (128, 128, 128)
TOL = 12

COLOUR_OPS = [
    dict(type='HueSafeColorJitter', brightness=0.3, contrast=0.3, saturation=0.4, hue=0.1),
    dict(type='RandomGrayscale', prob=0.5, keep_channels=True),
    dict(type='Posterize', bits=4, prob=0.5),
]
#: the same photometric transforms behind each kind of wrapper
WRAPPED = {
    'RandomApply': [dict(type='RandomApply', transforms=COLOUR_OPS[:2], prob=0.8)],
    'RandomChoice': [dict(type='RandomChoice', transforms=[COLOUR_OPS[:1], COLOUR_OPS[1:]])],
    'RandomOrder': [dict(type='mmdet.RandomOrder', transforms=COLOUR_OPS)],
    'HoldsSteps': [dict(type='HoldsSteps', steps=COLOUR_OPS)],
}


@TRANSFORMS.register_module(force=True)
class HoldsSteps(BaseTransform):
    """A wrapper of the test's own: any transform that holds transforms is looked into."""

    def __init__(self, steps):
        self.steps = [TRANSFORMS.build(s) for s in steps]

    def transform(self, results):
        for s in self.steps:
            results = s(results)
        return results


def painted() -> np.ndarray:
    img = np.empty((H, W, 3), np.uint8)
    img[:] = BACKGROUND
    for (x1, y1, x2, y2), c in zip(MARKS.astype(int), COLOURS):
        img[y1:y2, x1:x2] = c
    return img


def box_mask(shape, box) -> np.ndarray:
    """Pixels whose centre lies in ``box``."""
    ys, xs = np.mgrid[0:shape[0], 0:shape[1]] + 0.5
    x1, y1, x2, y2 = box
    return (xs > x1) & (xs < x2) & (ys > y1) & (ys < y2)


def grow(mask: np.ndarray, dilate: bool) -> np.ndarray:
    """``mask`` dilated (or eroded) by one pixel, 8-neighbourhood."""
    pad = np.pad(mask, 1, constant_values=not dilate)
    h, w = mask.shape
    shifted = [pad[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
    return np.logical_or.reduce(shifted) if dilate else np.logical_and.reduce(shifted)


def assert_colour_follows(view: np.ndarray, mask: np.ndarray) -> None:
    """The painted colour (whatever a pointwise photometric transform made of it) fills
    ``mask`` and appears nowhere else (one pixel of slack for resize blending)."""
    inside = grow(mask, dilate=False)
    assert inside.sum() >= 4, 'box too small to check'
    colour = np.median(view[inside].reshape(-1, 3), axis=0)
    close = np.abs(view.astype(np.int64) - colour).max(-1) <= TOL
    assert close[inside].all(), 'the box does not cover the painted colour'
    assert not (close & ~grow(mask, dilate=True)).any(), 'the painted colour lies outside the box'


# --------------------------------------------------------------------- (a) boxes follow the image
@pytest.mark.parametrize('wrapper', sorted(WRAPPED))
def test_soco_boxes_follow_the_image_through_each_wrapper(wrapper):
    checked, flips = 0, set()
    for seed in range(8):
        t = TRANSFORMS.build(
            dict(type='SoCoViews',
                 num_proposals=2,
                 v1_size=128,
                 v2_size=128,
                 v3_size=64,
                 v4_size=96,
                 min_visible=1.0,
                 jitter_prob=0.0,
                 flip_prob=0.5,
                 seed=seed,
                 view_pipelines=WRAPPED[wrapper]))
        np.random.seed(seed)
        out = t(dict(img=painted(), proposals=MARKS.copy()))
        flips |= set(out['view_flips'].tolist())
        for v, view in enumerate(out['img']):
            for k, pid in enumerate(out['proposal_ids']):
                if pid >= 0 and not out['is_pad'][k]:  # fully visible (min_visible=1)
                    assert_colour_follows(view, box_mask(view.shape, out['view_boxes'][v, k]))
                    checked += 1
    assert checked > 40 and flips == {True, False}


@pytest.mark.parametrize('wrapper', sorted(WRAPPED))
def test_plrc_region_masks_follow_the_image_through_each_wrapper(wrapper):
    """Two grid regions are painted: the region masks of both views must find them."""
    from mcl_plugin.datasets.transforms.region_masks import grid_region_map
    np.random.seed(0)
    ids = grid_region_map(H, W, 4)
    img = np.empty((H, W, 3), np.uint8)
    img[:] = BACKGROUND
    img[ids == 5], img[ids == 10] = COLOURS
    t = TRANSFORMS.build(
        dict(type='GridRegionTwoView',
             size=64,
             grid_size=4,
             flip_prob=0.5,
             min_overlap=0.0,
             transforms=[WRAPPED[wrapper], WRAPPED[wrapper]]))
    checked, flips = 0, set()
    for _ in range(6):
        out = t(dict(img=img.copy()))
        flips |= set(out['flips'].tolist())
        for view, mask in zip(out['img'], out['region_masks']):
            for r in (5, 10):
                if grow(mask == r, dilate=False).sum() >= 4:  # not a sliver
                    assert_colour_follows(view, mask == r)
                    checked += 1
    assert checked >= 6 and flips == {True, False}


@pytest.mark.parametrize('wrapper', sorted(WRAPPED))
def test_detco_patch_boxes_follow_the_image_through_each_wrapper(wrapper):
    """Patches may be flipped inside every wrapper (a flipped patch keeps its box): the painted
    pixels of every patch are as many as the painted object covers of its box, mapped from the
    image through ``jigsaw_crop_box``."""
    flip = dict(type='RandomFlip', prob=0.5)
    patch_pipeline = {
        'RandomApply': [dict(type='RandomApply', transforms=[flip], prob=0.5)],
        'RandomChoice': [dict(type='RandomChoice', transforms=[[flip], [dict(flip, prob=1.)]])],
        'RandomOrder': [dict(type='mmdet.RandomOrder', transforms=[flip, flip])],
        'HoldsSteps': [dict(type='HoldsSteps', steps=[flip])],
    }[wrapper]
    np.random.seed(1)
    t = TRANSFORMS.build(
        dict(type='GlobalLocalViews',
             num_global=1,
             num_local=3,
             global_pipeline=[
                 dict(type='RandomResizedCrop', scale=32),
                 dict(type='RandomFlip', prob=0.5)
             ],
             local_pipeline=[
                 dict(type='JigsawPatches',
                      crop_size=96,
                      patch_size=24,
                      crop_ratio_range=(0.3, 1.0),
                      shuffle=True,
                      interpolation='nearest',
                      patch_pipeline=patch_pipeline)
             ]))
    checked = 0
    for _ in range(3):
        out = t(dict(img=painted()))
        patches = out['img'][1:]
        for s in range(3):
            cx1, cy1, cx2, cy2 = out['jigsaw_crop_box'][s]
            sx, sy = 96 / (cx2 - cx1), 96 / (cy2 - cy1)
            for i in range(9):
                px1, py1, px2, py2 = out['patch_boxes'][s, i]
                for (mx1, my1, mx2, my2), c in zip(MARKS, COLOURS):
                    # the painted object in the crop frame, intersected with the patch box
                    iw = min(px2, (mx2 - cx1) * sx) - max(px1, (mx1 - cx1) * sx)
                    ih = min(py2, (my2 - cy1) * sy) - max(py1, (my1 - cy1) * sy)
                    expected = max(iw, 0) * max(ih, 0)
                    seen = (np.abs(patches[s * 9 + i].astype(int) - c).max(-1) <= TOL).sum()
                    # nearest resize: each side of the object moves by half a pixel at most
                    assert abs(seen - expected) <= 2 * 24 + 8, (s, i, seen, expected)
                    checked += expected > 0
    assert checked >= 6


# ------------------------------------------------------------- (b) geometric ops are refused
FLIP = dict(type='RandomFlip', prob=0.5)
ROTATE = dict(type='Rotate', angle=30., prob=0.5)
#: (the wrapped pipeline, the name the error must give, the wrappers it must name)
WRAPPED_GEOMETRY = {
    'RandomApply': ([dict(type='RandomApply', transforms=[FLIP],
                          prob=0.5)], 'RandomFlip', 'RandomApply'),
    'RandomChoice': ([dict(type='RandomChoice', transforms=[COLOUR_OPS[:1],
                                                            [ROTATE]])], 'Rotate', 'RandomChoice'),
    'RandomOrder': ([
        dict(type='mmdet.RandomOrder',
             transforms=[COLOUR_OPS[0], dict(type='RandomResizedCrop', scale=8)])
    ], 'RandomResizedCrop', 'RandomOrder'),
    'nested': ([
        dict(type='RandomApply',
             transforms=[
                 dict(type='RandomChoice',
                      transforms=[[COLOUR_OPS[1]], [dict(type='Shear', magnitude=0.3)]])
             ])
    ], 'Shear', 'RandomApply > RandomChoice'),
    'HoldsSteps': ([dict(type='HoldsSteps', steps=[COLOUR_OPS[2],
                                                   ROTATE])], 'Rotate', 'HoldsSteps'),
    'built': ([dict(type='RandomApply', transforms=[FLIP])], 'RandomFlip', 'RandomApply'),
}


def _soco(p):
    return dict(type='SoCoViews', view_pipelines=[p])


def _plrc(p):
    return dict(type='GridRegionTwoView', transforms=[[], p])


def _jigsaw_crop(p):
    return dict(type='JigsawPatches', crop_pipeline=p)


def _detco_local(p):
    return dict(type='GlobalLocalViews',
                global_pipeline=[],
                local_pipeline=[*p, dict(type='JigsawPatches')])


BUILDERS = {
    'SoCoViews': _soco,
    'GridRegionTwoView': _plrc,
    'JigsawPatches': _jigsaw_crop,
    'GlobalLocalViews': _detco_local
}


@pytest.mark.parametrize('builder', sorted(BUILDERS))
@pytest.mark.parametrize('case', sorted(WRAPPED_GEOMETRY))
def test_geometric_op_inside_a_wrapper_is_refused(builder, case):
    pipeline, name, wrappers = WRAPPED_GEOMETRY[case]
    if case == 'built':  # transforms given as objects, not configs
        pipeline = [TRANSFORMS.build(t) for t in pipeline]
    with pytest.raises(ValueError, match=f"'{name}' \\(inside {wrappers}\\) moves pixels"):
        TRANSFORMS.build(BUILDERS[builder](pipeline))


def test_soco_random_apply_flip_is_refused():
    """The reported case: RandomApply([RandomFlip]) in a SoCo view pipeline was accepted."""
    with pytest.raises(ValueError, match='RandomFlip.*inside RandomApply.*proposals'):
        TRANSFORMS.build(_soco([dict(type='RandomApply', transforms=[FLIP], prob=0.5)]))


def test_jigsaw_patch_pipeline_allows_flips_only():
    TRANSFORMS.build(
        dict(type='JigsawPatches', patch_pipeline=[dict(type='RandomApply', transforms=[FLIP])]))
    with pytest.raises(ValueError, match="'Rotate' \\(inside RandomApply\\).*patch boxes"):
        TRANSFORMS.build(
            dict(type='JigsawPatches',
                 patch_pipeline=[dict(type='RandomApply', transforms=[ROTATE])]))
    # the global views carry no boxes: any geometry is fine there
    TRANSFORMS.build(_detco_local([]) | dict(global_pipeline=WRAPPED_GEOMETRY['nested'][0]))


def test_expanded_policies_and_torchvision_wrappers_are_looked_into():
    with pytest.raises(ValueError, match="'Rotate' \\(inside RandAugment\\)"):
        TRANSFORMS.build(
            _soco([
                dict(type='RandAugment',
                     policies='timm_increasing',
                     num_policies=2,
                     magnitude_level=9)
            ]))
    with pytest.raises(ValueError, match="'RandomRotation'"):
        TRANSFORMS.build(_plrc([dict(type='torchvision/RandomRotation', degrees=10)]))


def test_sample_crop_keeps_the_random_stream_of_mmpretrain():
    """PLRC / DetCo draw their crops with mmpretrain's RandomResizedCrop stream (rows first)."""
    from mmpretrain.datasets.transforms import RandomResizedCrop

    from mcl_plugin.datasets.transforms.geometry import sample_crop
    ref = RandomResizedCrop(scale=8, crop_ratio_range=(0.2, 1.0))
    img = np.zeros((90, 130, 3), np.uint8)
    for seed in range(50):
        np.random.seed(seed)
        top, left, h, w = ref.rand_crop_params(img)
        np.random.seed(seed)
        assert sample_crop(90, 130, (0.2, 1.0), (3 / 4, 4 / 3),
                           y_first=True) == (left, top, left + w, top + h)
    # the central fallback when no draw fits
    assert sample_crop(10, 100, (0.9, 1.0), (1.0, 1.0), np.random.RandomState(0)) == (45, 0, 55, 10)
