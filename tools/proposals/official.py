"""SoCo's own selective search (the "official" generator), re-implemented with numpy.

The SoCo repository (hologerry/SoCo @ 2be1229, MIT licence) generates its proposals with a
modified copy of the pure-Python ``selectivesearch`` package, ``selective_search/
selective_search.py``, called by ``selective_search/generate_imagenet_ss_proposals.py:45-47`` on
the full-resolution RGB image (``PIL.Image.open(path).convert('RGB')``) with ``scale=300,
sigma=0.9, min_size=100``. This module computes the same boxes, in the same order, with the same
tie-breaking, but vectorised (the original loops over every pixel in Python); see
:func:`official_selective_search` for every step and the line it follows. What is kept from the
original on purpose, because it shapes the proposals SoCo trained on:

* the colour histograms (HSV, 25 bins per channel) and the texture histograms (8-neighbour LBP,
  10 bins per channel) both bin on ``(0, 255)``, although HSV comes from 0-255 RGB values, so
  hue and saturation (0-1) fall in the first bin (``selective_search.py:94, 140, 153``);
* region adjacency is the original's corner test (``selective_search.py:195-205``), which
  misses regions that touch without a corner inside the other's box;
* every region of the hierarchy is returned, duplicates included, as ``(x, y, w, h)`` with
  ``w = max_x - min_x`` (no ``+ 1``, ``selective_search.py:311-317``). SoCo's loader reads it as
  ``x2 = x + w - 1`` inclusive (``contrast/data/props_utils.py:41-42``), which is the half-open
  ``[x, x + w)`` of :mod:`mcl_plugin.datasets.proposals`: the files need no conversion.

Only numpy, scipy and scikit-image (``requirements/runtime.txt``) are needed.
"""
from dataclasses import dataclass
from operator import itemgetter
from typing import Dict, List, Optional, Tuple

import numpy as np

from .search import _downscale, _rescale

COLOUR_BINS = 25  # selective_search.py:84
TEXTURE_BINS = 10  # selective_search.py:128

_SKIMAGE_HINT = ('the official SoCo selective search needs scikit-image (and scipy): pip install '
                 'scikit-image==0.26.0 (listed in requirements/runtime.txt)')


@dataclass
class OfficialSearchConfig:
    """Settings of SoCo's selective search (``generate_imagenet_ss_proposals.py:22-23, 47``).

    Attributes:
        scale (float): Felzenszwalb ``scale`` (official 300; the paper states 500).
        sigma (float): Felzenszwalb Gaussian ``sigma`` (official 0.9).
        min_size (int): Felzenszwalb ``min_size`` in pixels (official 100; the paper states 10).
        max_side (int, optional): Run on a copy whose longer side is at most this (boxes are
            mapped back). None: full resolution, as the official generator (a deviation
            otherwise; the cost grows with the pixel count).
        method (str): Always ``'official'``; it tells this generator's partial files and json
            ``info`` apart from OpenCV's.
    """

    scale: float = 300
    sigma: float = 0.9
    min_size: int = 100
    max_side: Optional[int] = None
    method: str = 'official'

    def __post_init__(self) -> None:
        if self.method != 'official':
            raise ValueError(f"OfficialSearchConfig.method must be 'official', got "
                             f'{self.method!r}')
        if self.scale <= 0 or self.sigma < 0 or self.min_size < 1:
            raise ValueError('official selective search needs scale > 0, sigma >= 0 and '
                             f'min_size >= 1, got {self.scale}, {self.sigma}, {self.min_size}')
        if self.max_side is not None and self.max_side < 16:
            raise ValueError(f'max_side must be >= 16 or None, got {self.max_side}')


def require_skimage():
    """Import check with the install hint (scikit-image and scipy)."""
    try:
        import scipy.ndimage  # noqa: F401
        import skimage.color  # noqa: F401
        import skimage.feature  # noqa: F401
        import skimage.segmentation  # noqa: F401
    except ImportError as e:
        raise ImportError(f'{_SKIMAGE_HINT} ({e})') from None


def _bin_index(values: np.ndarray, bins: int) -> np.ndarray:
    """``numpy.histogram(values, bins, (0, 255))``'s bin of every value: ``edges[i] <= v <
    edges[i + 1]``, 255 in the last bin (all values here lie in [0, 255])."""
    edges = np.linspace(0.0, 255.0, bins + 1)
    idx = np.searchsorted(edges, values, side='right') - 1
    return np.clip(idx, 0, bins - 1)


def _region_histograms(region: np.ndarray, num: int, channels: np.ndarray, bins: int,
                       sizes: np.ndarray) -> np.ndarray:
    """Per-region histograms of 3 channels, concatenated and divided by the region size, as
    ``_calc_colour_hist`` / ``_calc_texture_hist`` (``selective_search.py:73-145``)."""
    parts = []
    for c in range(3):
        b = _bin_index(channels[..., c].ravel(), bins)
        parts.append(np.bincount(region * bins + b, minlength=num * bins).reshape(num, bins))
    return np.concatenate(parts, axis=1).astype(np.float64) / sizes[:, None]


def _initial_regions(rgb: np.ndarray, scale: float, sigma: float, min_size: int) -> dict:
    """Felzenszwalb segments and their boxes, sizes and histograms (``_generate_segments`` and
    ``_extract_regions``, ``selective_search.py:17-33, 148-190``).

    Regions are numbered in the order the original inserts them into its dict: by the first
    pixel of each segment in raster order (``selective_search.py:156-164``).
    """
    import scipy.ndimage as ndi
    import skimage.color
    import skimage.feature
    import skimage.segmentation
    import skimage.util
    labels = skimage.segmentation.felzenszwalb(skimage.util.img_as_float(rgb), scale=scale,
                                               sigma=sigma, min_size=min_size)
    # the original keeps the 0-255 values as float64 next to the label channel (:29-31)
    img = rgb.astype(np.float64)
    flat = labels.ravel()
    uniq, first, inverse = np.unique(flat, return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), np.int64)
    rank[np.argsort(first, kind='stable')] = np.arange(len(uniq))
    region = rank[inverse.ravel()]
    num = len(uniq)
    sizes = np.bincount(region, minlength=num)
    slices = ndi.find_objects(region.reshape(labels.shape) + 1)
    boxes = [(s[1].start, s[0].start, s[1].stop - 1, s[0].stop - 1) for s in slices]
    hsv = skimage.color.rgb2hsv(img)  # HSV of 0-255 values (:153)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # skimage: LBP of a float image
        tex = np.stack([skimage.feature.local_binary_pattern(img[:, :, c], 8, 1.0)
                        for c in range(3)], axis=-1)  # (:111-117)
    return dict(boxes=boxes,
                sizes=[int(s) for s in sizes],
                hist_c=list(_region_histograms(region, num, hsv, COLOUR_BINS, sizes)),
                hist_t=list(_region_histograms(region, num, tex, TEXTURE_BINS, sizes)))


def _neighbour_pairs(boxes: List[Tuple[int, int, int, int]]) -> List[Tuple[int, int]]:
    """The original's adjacency (``_extract_neighbors``, ``selective_search.py:193-214``):
    pairs ``(a, b)``, ``a < b``, where a corner of ``b``'s box lies strictly inside ``a``'s
    box (corner pairs: top-left, bottom-right, bottom-left, top-right), in its loop order."""
    b = np.asarray(boxes, np.int64).reshape(-1, 4)
    x1, y1, x2, y2 = (b[:, i] for i in range(4))

    def inside(px: np.ndarray, py: np.ndarray) -> np.ndarray:  # [a, b]: b's corner in a
        return ((x1[:, None] < px[None]) & (px[None] < x2[:, None])
                & (y1[:, None] < py[None]) & (py[None] < y2[:, None]))

    m = inside(x1, y1) | inside(x2, y2) | inside(x1, y2) | inside(x2, y1)
    rows, cols = np.nonzero(np.triu(m, k=1))  # row-major: the original's nested loop order
    return list(zip(rows.tolist(), cols.tolist()))


def _seq_sum(values: np.ndarray) -> np.ndarray:
    """Left-to-right float64 sum along the last axis (Python's ``sum`` of the original)."""
    return np.cumsum(values, axis=-1)[..., -1]


def official_selective_search(rgb: np.ndarray,
                              cfg: Optional[OfficialSearchConfig] = None) -> np.ndarray:
    """SoCo's selective search: the boxes of every region of the merge hierarchy.

    Steps and the lines of ``selective_search/selective_search.py`` they follow: Felzenszwalb
    segmentation of the image scaled to [0, 1] (:24-26); per segment the box, pixel count and
    histograms (:148-190); initial similarities = colour + texture histogram intersections
    + size + fill (:36-70, :278-280) over the corner-test neighbours (:193-214); then, until no
    pair is left, merge the most similar pair -- on ties the pair inserted last, as
    ``sorted(...)[-1]`` picks (:286) -- into a new region with size-weighted histograms
    (:217-231), drop every pair that holds either region and pair the new region with their
    other members in that order (:292-305).

    Args:
        rgb (np.ndarray): ``HxWx3`` uint8 RGB image (the official reads with PIL
            ``convert('RGB')``).
        cfg (OfficialSearchConfig, optional): Settings. Default: the official ones.

    Returns:
        np.ndarray: ``(N, 4)`` float32 ``(x, y, w, h)`` boxes in the pixels of ``rgb``,
        ``w = max_x - min_x``, the initial segments first (raster order of their first pixel),
        then the merged regions in merge order; duplicates kept.
    """
    require_skimage()
    cfg = cfg or OfficialSearchConfig()
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f'expected an HxWx3 uint8 RGB image, got {rgb.dtype} {rgb.shape}')
    height, width = rgb.shape[:2]
    small, s = _downscale(rgb, cfg.max_side)
    regions = _initial_regions(small, cfg.scale, cfg.sigma, cfg.min_size)
    boxes, sizes = regions['boxes'], regions['sizes']
    hist_c, hist_t = regions['hist_c'], regions['hist_t']
    imsize = small.shape[0] * small.shape[1]

    def size_fill(a: int, b: int) -> Tuple[float, float]:  # :50-65
        (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = boxes[a], boxes[b]
        bbsize = (max(ax2, bx2) - min(ax1, bx1)) * (max(ay2, by2) - min(ay1, by1))
        return (1.0 - (sizes[a] + sizes[b]) / imsize,
                1.0 - (bbsize - sizes[a] - sizes[b]) / imsize)

    def sim(a: int, b: int) -> float:  # _calc_sim, :68-70, same order of additions
        size, fill = size_fill(a, b)
        return (_seq_sum(np.minimum(hist_c[a], hist_c[b]))
                + _seq_sum(np.minimum(hist_t[a], hist_t[b])) + size + fill)

    pairs = _neighbour_pairs(boxes)
    S: Dict[Tuple[int, int], float] = {}
    if pairs:
        a, b = np.asarray(pairs).T
        hc, ht = np.stack(hist_c), np.stack(hist_t)
        colour = _seq_sum(np.minimum(hc[a], hc[b]))
        texture = _seq_sum(np.minimum(ht[a], ht[b]))
        for k, (i, j) in enumerate(pairs):
            size, fill = size_fill(i, j)
            S[(i, j)] = colour[k] + texture[k] + size + fill
    while S:
        # the last of the maximal pairs in insertion order (stable sort, :286)
        i, j = max(reversed(S.items()), key=itemgetter(1))[0]
        t = len(boxes)
        new_size = sizes[i] + sizes[j]
        (ix1, iy1, ix2, iy2), (jx1, jy1, jx2, jy2) = boxes[i], boxes[j]
        boxes.append((min(ix1, jx1), min(iy1, jy1), max(ix2, jx2), max(iy2, jy2)))
        sizes.append(new_size)
        hist_c.append((hist_c[i] * sizes[i] + hist_c[j] * sizes[j]) / new_size)
        hist_t.append((hist_t[i] * sizes[i] + hist_t[j] * sizes[j]) / new_size)
        stale = [k for k in S if i in k or j in k]
        for k in stale:
            del S[k]
        for k in stale:
            if k != (i, j):
                n = k[1] if k[0] in (i, j) else k[0]
                if (t, n) not in S:  # a second assignment would keep the place and value
                    S[(t, n)] = sim(t, n)
    out = np.asarray(boxes, np.float32).reshape(-1, 4)
    out[:, 2:] -= out[:, :2]  # (x, y, max_x - min_x, max_y - min_y), :311-317
    return _rescale(out, s, width, height)


def read_rgb(path: str) -> np.ndarray:
    """The official generator's decoding: ``np.array(PIL.Image.open(path).convert('RGB'))``
    (``generate_imagenet_ss_proposals.py:45``)."""
    from PIL import Image
    with Image.open(path) as im:
        return np.array(im.convert('RGB'))


__all__ = ['OfficialSearchConfig', 'official_selective_search', 'read_rgb', 'require_skimage']
