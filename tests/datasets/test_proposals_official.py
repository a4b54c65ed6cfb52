"""SoCo's own selective search (tools/proposals/official.py) against a literal, loop-by-loop
reference written here from hologerry/SoCo's ``selective_search/selective_search.py`` (@ 2be1229,
MIT): same boxes, same order, duplicates kept; plus hand-checkable cases."""
import warnings

import numpy as np
import pytest

from tools.proposals import OfficialSearchConfig, official_selective_search

skimage = pytest.importorskip('skimage')


def reference_selective_search(rgb: np.ndarray, scale=300, sigma=0.9, min_size=100) -> list:
    """Slow reference: per-region masks and ``np.histogram``, the nested-loop corner test,
    ``sorted(...)[-1]`` selection, Python ``sum`` -- as the official file does (:17-319)."""
    import skimage.color
    import skimage.feature
    import skimage.segmentation
    import skimage.util
    labels = skimage.segmentation.felzenszwalb(skimage.util.img_as_float(rgb), scale=scale,
                                               sigma=sigma, min_size=min_size)
    img = rgb.astype(np.float64)
    hsv = skimage.color.rgb2hsv(img)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        tex = np.stack([skimage.feature.local_binary_pattern(img[:, :, c], 8, 1.0)
                        for c in range(3)], -1)
    _, first = np.unique(labels.ravel(), return_index=True)
    order = labels.ravel()[np.sort(first)]  # labels by their first pixel in raster order
    R = {}
    for key, lab in enumerate(order):
        ys, xs = np.nonzero(labels == lab)
        mask = labels == lab

        def hist(ch, bins):
            return np.concatenate([np.histogram(ch[mask][:, c], bins, (0.0, 255.0))[0]
                                   for c in range(3)]) / mask.sum()

        R[key] = dict(min_x=int(xs.min()), min_y=int(ys.min()), max_x=int(xs.max()),
                      max_y=int(ys.max()), size=int(mask.sum()), hist_c=hist(hsv, 25),
                      hist_t=hist(tex, 10))
    imsize = labels.size

    def sim(a, b):
        bb = ((max(a['max_x'], b['max_x']) - min(a['min_x'], b['min_x']))
              * (max(a['max_y'], b['max_y']) - min(a['min_y'], b['min_y'])))
        return (sum(min(x, y) for x, y in zip(a['hist_c'], b['hist_c']))
                + sum(min(x, y) for x, y in zip(a['hist_t'], b['hist_t']))
                + (1.0 - (a['size'] + b['size']) / imsize)
                + (1.0 - (bb - a['size'] - b['size']) / imsize))

    def corner_in(a, b):
        return any(a['min_x'] < px < a['max_x'] and a['min_y'] < py < a['max_y']
                   for px, py in ((b['min_x'], b['min_y']), (b['max_x'], b['max_y']),
                                  (b['min_x'], b['max_y']), (b['max_x'], b['min_y'])))

    items = list(R.items())
    S = {}
    for n, (ai, a) in enumerate(items[:-1]):
        for bi, b in items[n + 1:]:
            if corner_in(a, b):
                S[(ai, bi)] = sim(a, b)
    while S:
        i, j = sorted(S.items(), key=lambda kv: kv[1])[-1][0]
        t = max(R) + 1
        a, b = R[i], R[j]
        n = a['size'] + b['size']
        R[t] = dict(min_x=min(a['min_x'], b['min_x']), min_y=min(a['min_y'], b['min_y']),
                    max_x=max(a['max_x'], b['max_x']), max_y=max(a['max_y'], b['max_y']),
                    size=n, hist_c=(a['hist_c'] * a['size'] + b['hist_c'] * b['size']) / n,
                    hist_t=(a['hist_t'] * a['size'] + b['hist_t'] * b['size']) / n)
        stale = [k for k in S if i in k or j in k]
        for k in stale:
            del S[k]
        for k in stale:
            if k != (i, j):
                other = k[1] if k[0] in (i, j) else k[0]
                S[(t, other)] = sim(R[t], R[other])
    return [[r['min_x'], r['min_y'], r['max_x'] - r['min_x'], r['max_y'] - r['min_y']]
            for r in R.values()]


def photo(h: int, w: int) -> np.ndarray:
    """A resized real photo (scikit-image's astronaut, BSD-3)."""
    import cv2
    from skimage import data
    return np.ascontiguousarray(cv2.resize(data.astronaut(), (w, h),
                                           interpolation=cv2.INTER_AREA))


@pytest.mark.parametrize('shape,kwargs', [((72, 96), {}),
                                          ((60, 80), dict(scale=100, min_size=20))])
def test_same_boxes_as_the_literal_reference(shape, kwargs):
    img = photo(*shape)
    ours = official_selective_search(img, OfficialSearchConfig(**kwargs))
    ref = reference_selective_search(img, **kwargs)
    assert len(ref) > 3 and ours.dtype == np.float32
    assert ours.tolist() == [[float(v) for v in r] for r in ref]


def test_hand_checkable_cases():
    # two halves: no corner of one box lies strictly inside the other, so the original's
    # adjacency finds no pair and nothing merges; w = max_x - min_x (no +1)
    two = np.zeros((40, 40, 3), np.uint8)
    two[:, :20], two[:, 20:] = (220, 30, 30), (30, 30, 220)
    assert official_selective_search(two).tolist() == [[0, 0, 19, 39], [20, 0, 19, 39]]
    # a square on a plain background: the merges repeat boxes, which are kept
    sq = np.full((60, 80, 3), 200, np.uint8)
    sq[15:45, 20:60] = (20, 120, 20)
    boxes = official_selective_search(sq)
    assert boxes[0].tolist() == [0, 0, 79, 59] and boxes[-1].tolist() == [0, 0, 79, 59]
    assert len(np.unique(boxes, axis=0)) < len(boxes)


def test_ties_are_broken_as_the_original():
    """Two identical squares: their pairs with the background are equally similar; the
    original merges the pair inserted last (``sorted(...)[-1]``), which decides the order."""
    img = np.full((60, 120, 3), 200, np.uint8)
    img[15:45, 10:50] = (20, 120, 20)
    img[15:45, 70:110] = (20, 120, 20)
    ours = official_selective_search(img).tolist()
    assert ours == [[float(v) for v in r] for r in reference_selective_search(img)]
    assert ours[13] == [72, 17, 35, 25]  # the right square's region merges first


def test_max_side_and_bad_input():
    img = photo(96, 128)
    boxes = official_selective_search(img, OfficialSearchConfig(max_side=64))
    assert (boxes[:, 0] + boxes[:, 2] <= 128 + 1e-3).all() and boxes[:, 2].max() > 64
    with pytest.raises(ValueError, match='uint8 RGB'):
        official_selective_search(img.astype(np.float32))
    with pytest.raises(ValueError, match='min_size'):
        OfficialSearchConfig(min_size=0)


def test_missing_scikit_image_names_the_install(monkeypatch):
    import sys

    from tools.proposals import require_skimage
    monkeypatch.setitem(sys.modules, 'skimage.segmentation', None)
    with pytest.raises(ImportError, match=r'pip install scikit-image==0\.26\.0'):
        require_skimage()
