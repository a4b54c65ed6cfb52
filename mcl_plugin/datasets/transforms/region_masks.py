"""Two augmented views of an image that carry an ``n x n`` grid of region masks (PLRC).

PLRC (Bai et al., CVPR 2022, Sec. 3.2) divides every image into a non-overlapping ``n x n`` grid
of regions; "each augmentation v is paired with masks, and each mask denotes the corresponding
region under the same geometric transformation as v with which it shares resolution".
:class:`GridRegionTwoView` makes the two views itself so that the geometric parameters of each
view (random resized crop, flip) are known and applied to an integer region-id map as well.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from mcl_plugin.registry import TRANSFORMS
from .geometry import (Box, build_photometric, check_ranges, crop_resize,
                       crop_resize_flip_nearest, flip, intersect, overlap_of_smaller,
                       sample_crop)

#: Intersection of two crop boxes over the smaller one (the overlap rule of the class below).
box_overlap = overlap_of_smaller


def grid_region_map(height: int, width: int, grid_size: int) -> np.ndarray:
    """Region id of every pixel of an ``height x width`` image for an ``n x n`` grid.

    Pixel ``(y, x)`` (centre ``(y + 0.5, x + 0.5)``) belongs to row ``floor((y + 0.5) n / H)``
    and column ``floor((x + 0.5) n / W)``; its id is ``row * n + col`` (row-major, ``0`` is
    the top-left region).

    Returns:
        np.ndarray: ``(height, width)`` ``uint8`` ids in ``[0, n * n)``.
    """
    rows = np.floor((np.arange(height) + 0.5) * grid_size / height).astype(np.int64)
    cols = np.floor((np.arange(width) + 0.5) * grid_size / width).astype(np.int64)
    return (rows[:, None] * grid_size + cols[None, :]).astype(np.uint8)


def common_regions(maps: np.ndarray, num_regions: int) -> np.ndarray:
    """``(num_regions,)`` bool: regions with at least one pixel in every map of ``maps``."""
    present = [np.bincount(m.ravel(), minlength=num_regions)[:num_regions] > 0 for m in maps]
    return np.logical_and.reduce(present)


@TRANSFORMS.register_module()
class GridRegionTwoView(BaseTransform):
    """Two MoCo v2 views of an image with the ``n x n`` grid region masks of each view.

    For each of the two views: a random resized crop (drawn by :func:`.geometry.sample_crop`
    with the algorithm and random stream of mmpretrain's ``RandomResizedCrop``, so the crop
    distribution is MoCo v2's), a resize to
    ``size x size``, a horizontal flip with probability ``flip_prob``, then the view's
    photometric pipeline (colour jitter, grayscale, blur, ...). The same crop box and flip are
    applied with nearest-neighbour sampling to the integer region-id map of the image
    (:func:`grid_region_map`), giving an ``mask_size x mask_size`` region map per view.

    **Overlap rule.** A pair of crop boxes is accepted when the intersection covers at least
    ``min_overlap`` of the smaller crop (:func:`box_overlap`) *and* at least
    ``min_common_regions`` grid regions appear in both region maps. Up to ``max_tries`` pairs
    are drawn (both boxes re-drawn each time). If none is accepted, the pair with the largest
    overlap among those with ``min_common_regions`` common regions is used; if no pair had
    any, the second view re-uses the first view's crop box (its flip and photometric
    augmentation stay independent), so every region visible in view 1 is common.

    The rule is a project choice, kept as a switch: neither the paper nor the official code
    constrains the overlap of the two contrasted views; ``min_overlap=0`` keeps only the
    positive-overlap / common-region requirement (the paper-size configs), 0.5 redraws as
    before (the CPU demo).

    **Teacher view** (``teacher_view=True``, the official code's construction of the
    distillation teacher): a third crop of the same image, redrawn (up to ``max_tries`` times)
    until its intersection with view 1's crop covers at least ``teacher_overlap`` of the
    *larger* of the two crops (the official rule), with its own flip and view 1's photometric
    pipeline. The model reads its momentum features at the image positions of view 1's points.

    **Outputs** (in addition to ``img``, which becomes the list of the two views, plus the
    teacher view as a third item when ``teacher_view``):

    - ``region_masks`` (``(2, mask_size, mask_size)`` ``uint8``): region id per pixel of each
      view, ``row * n + col`` of the original image's grid.
    - ``common_regions`` (``(n * n,)`` bool): regions present in both region maps.
    - ``crop_boxes`` (``(V, 4)`` float32, ``V`` = 2 or 3 views): ``x1, y1, x2, y2`` of each
      crop in original image pixels (``x2``/``y2`` exclusive).
    - ``flips`` (``(V,)`` bool), ``region_overlap`` (float, :func:`box_overlap` of the chosen
      pair), ``overlap_tries`` (int, pairs drawn).

    Pack them with ``PackInputs(algorithm_keys=('region_masks', 'common_regions', ...))``.

    Args:
        size (int): Side of the square views. Defaults to 224.
        transforms (Sequence[Sequence[dict]]): Two photometric pipelines, one per view (MoCo
            v2 uses the same recipe for both). Geometric transforms, also inside a wrapper
            such as ``RandomApply``, are rejected. Defaults to two empty pipelines.
        grid_size (int): ``n`` of the ``n x n`` grid (paper default 4; 2..16).
        mask_size (int, optional): Side of the region maps; None = ``size``. PLRC configs set
            it to the feature resolution ``R`` so the maps index the up-sampled feature map.
        crop_ratio_range (tuple[float, float]): Crop area range. Defaults to (0.2, 1.0)
            (MoCo v2).
        aspect_ratio_range (tuple[float, float]): Defaults to (3/4, 4/3).
        flip_prob (float): Horizontal flip probability per view. Defaults to 0.5.
        min_overlap (float): Overlap threshold of the rule above. Defaults to 0.5.
        min_common_regions (int): Common regions required. Defaults to 1.
        max_tries (int): Bound on drawn pairs. Defaults to 20.
        teacher_view (bool): Also make the third (teacher) view. Defaults to False.
        teacher_overlap (float): Its overlap with view 1 over the larger crop. Defaults to 0.5.
        interpolation (str): Image resize interpolation. Defaults to 'bilinear'.
        backend (str): 'cv2' or 'pillow'. Defaults to 'pillow'.
    """

    def __init__(self,
                 size: int = 224,
                 transforms: Sequence[Sequence[dict]] = ((), ()),
                 grid_size: int = 4,
                 mask_size: Optional[int] = None,
                 crop_ratio_range: Tuple[float, float] = (0.2, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 flip_prob: float = 0.5,
                 min_overlap: float = 0.5,
                 min_common_regions: int = 1,
                 max_tries: int = 20,
                 teacher_view: bool = False,
                 teacher_overlap: float = 0.5,
                 interpolation: str = 'bilinear',
                 backend: str = 'pillow') -> None:
        if len(transforms) != 2:
            raise ValueError(f'GridRegionTwoView needs two per-view pipelines, got '
                             f'{len(transforms)}')
        if not 2 <= grid_size <= 16:
            raise ValueError(f'grid_size must be in 2..16 (ids are uint8), got {grid_size}')
        if not 0. <= min_overlap <= 1. or max_tries < 1 or min_common_regions < 1:
            raise ValueError('need 0 <= min_overlap <= 1, max_tries >= 1, '
                             'min_common_regions >= 1')
        self.size = size
        self.mask_size = mask_size or size
        self.grid_size = grid_size
        self.flip_prob = flip_prob
        self.min_overlap = min_overlap
        self.min_common_regions = min_common_regions
        self.max_tries = max_tries
        self.teacher_view = teacher_view
        self.teacher_overlap = teacher_overlap
        self.interpolation = interpolation
        self.backend = backend
        check_ranges(crop_ratio_range, aspect_ratio_range)
        self.crop_ratio_range = tuple(crop_ratio_range)
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        self.pipelines = [
            build_photometric(p, f'GridRegionTwoView view pipeline {i}', 'region masks',
                              'GridRegionTwoView does the crop/resize/flip itself so the region '
                              'masks follow the image (size, crop_ratio_range, '
                              'aspect_ratio_range, flip_prob).') for i, p in enumerate(transforms)
        ]

    def _draw_box(self, img: np.ndarray) -> Box:
        h, w = img.shape[:2]
        return sample_crop(h, w, self.crop_ratio_range, self.aspect_ratio_range, y_first=True)

    def sample_boxes(self, img: np.ndarray, id_map: np.ndarray) -> Tuple[List[Box], float, int]:
        """Two crop boxes satisfying the overlap rule (see the class docstring).

        Returns:
            tuple: ``([box1, box2], overlap, tries)``.
        """
        best: Optional[Tuple[float, List[Box]]] = None
        first: Optional[Box] = None
        num_regions = self.grid_size**2
        for tries in range(1, self.max_tries + 1):
            boxes = [self._draw_box(img), self._draw_box(img)]
            first = first or boxes[0]
            overlap = box_overlap(*boxes)
            if overlap <= 0:
                continue
            maps = [crop_resize_flip_nearest(id_map, b, self.mask_size, False) for b in boxes]
            n_common = int(common_regions(maps, num_regions).sum())
            if n_common < self.min_common_regions:
                continue
            if overlap >= self.min_overlap:
                return boxes, overlap, tries
            if best is None or overlap > best[0]:
                best = (overlap, boxes)
        if best is not None:
            return best[1], best[0], self.max_tries
        return [first, first], 1., self.max_tries

    def sample_teacher_box(self, img: np.ndarray, box: Box) -> Box:
        """A crop overlapping ``box`` by ``teacher_overlap`` of the larger crop (else the
        best of ``max_tries``)."""
        best: Tuple[float, Box] = (-1., box)
        for _ in range(self.max_tries):
            cand = self._draw_box(img)
            inter = intersect(box, cand)
            area = 0. if inter is None else (inter[2] - inter[0]) * (inter[3] - inter[1])
            ratio = area / max((b[2] - b[0]) * (b[3] - b[1]) for b in (box, cand))
            if ratio >= self.teacher_overlap:
                return cand
            best = max(best, (ratio, cand))
        return best[1]

    def transform(self, results: Dict) -> Dict:
        img = results['img']
        h, w = img.shape[:2]
        id_map = grid_region_map(h, w, self.grid_size)
        boxes, overlap, tries = self.sample_boxes(img, id_map)
        flips = [bool(np.random.rand() < self.flip_prob) for _ in range(2)]
        pipelines = list(self.pipelines)
        if self.teacher_view:
            boxes = boxes + [self.sample_teacher_box(img, boxes[0])]
            flips.append(bool(np.random.rand() < self.flip_prob))
            pipelines.append(self.pipelines[0])
        views, masks = [], []
        for i, (box, flipped, pipeline) in enumerate(zip(boxes, flips, pipelines)):
            view = crop_resize(img, box, self.size, interpolation=self.interpolation,
                               backend=self.backend)
            if flipped:
                view = flip(view)
            out = pipeline(
                dict(copy.deepcopy({
                    k: v
                    for k, v in results.items() if k != 'img'
                }),
                     img=view,
                     img_shape=view.shape[:2]))
            views.append(out['img'])
            if i < 2:
                masks.append(crop_resize_flip_nearest(id_map, box, self.mask_size, flipped))
        results['img'] = views
        results['img_shape'] = views[0].shape[:2]
        results['region_masks'] = np.stack(masks)
        results['common_regions'] = common_regions(masks, self.grid_size**2)
        results['crop_boxes'] = np.array(boxes, dtype=np.float32)
        results['flips'] = np.array(flips)
        results['region_overlap'] = overlap
        results['overlap_tries'] = tries
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(size={self.size}, mask_size={self.mask_size}, '
                f'grid_size={self.grid_size}, min_overlap={self.min_overlap}, '
                f'min_common_regions={self.min_common_regions}, max_tries={self.max_tries}, '
                f'teacher_view={self.teacher_view}, teacher_overlap={self.teacher_overlap}, '
                f'crop_ratio_range={self.crop_ratio_range}, '
                f'aspect_ratio_range={self.aspect_ratio_range}, flip_prob={self.flip_prob}, '
                f'pipelines={self.pipelines})')
